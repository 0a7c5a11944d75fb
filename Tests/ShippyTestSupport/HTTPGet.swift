import Foundation

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// What an HTTP GET answers that is not 200.
package struct HTTPStatusError: Error, CustomStringConvertible {
    package var url: String
    package var status: Int
    package var description: String { "GET \(url) answered \(status)" }
}

/// The body of `GET http://host:port/path`, as text.
/// - Throws: `HTTPStatusError` for a status other than 200, or the transport's error.
package func httpGet(host: String, port: Int, path: String) async throws -> String {
    let url = URL(string: "http://\(host):\(port)\(path)")!
    let (data, response) = try await URLSession.shared.data(from: url)
    let status = (response as? HTTPURLResponse)?.statusCode ?? 0
    guard status == 200 else { throw HTTPStatusError(url: url.absoluteString, status: status) }
    return String(decoding: data, as: UTF8.self)
}

/// One HTTP exchange as a test sees it: the status, the headers (names in lower case) and the body.
package struct HTTPExchange: CustomStringConvertible {
    package var status: Int
    package var headers: [String: String]
    package var body: Data

    package var text: String { String(decoding: body, as: UTF8.self) }
    /// The body as a JSON object, or empty when it is not one.
    package var json: [String: Any] { ((try? JSONSerialization.jsonObject(with: body)) as? [String: Any]) ?? [:] }
    package var description: String { "\(status) \(text)" }
}

/// `method url` with `headers` and `body` (a JSON value is sent as JSON), whatever the status.
package func http(
    _ method: String, _ url: String, headers: [String: String] = [:], json: Any? = nil, body: Data? = nil
) async throws -> HTTPExchange {
    var request = URLRequest(url: URL(string: url)!)
    request.httpMethod = method
    for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
    if let json {
        request.httpBody = try JSONSerialization.data(withJSONObject: json)
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
    } else if let body {
        request.httpBody = body
    }
    let (data, response) = try await URLSession.shared.data(for: request)
    let http = response as? HTTPURLResponse
    var fields: [String: String] = [:]
    for (name, value) in http?.allHeaderFields ?? [:] { fields["\(name)".lowercased()] = "\(value)" }
    return HTTPExchange(status: http?.statusCode ?? 0, headers: fields, body: data)
}
