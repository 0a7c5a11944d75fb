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
