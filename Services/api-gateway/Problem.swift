import Foundation
import GRPCCore
import HTTPTypes
import Hummingbird
import OpenAPIRuntime
import ShippyDomain

/// An RFC 9457 problem (`application/problem+json`): the HTTP status, and a `detail` that says what was wrong and
/// what to do. Details come from our own rules and the services' messages to clients, never from an underlying
/// error's description: no address, driver message or stack leaves the gateway.
struct Problem: Error, Encodable, Sendable {
    var status: HTTPResponse.Status
    var detail: String
    /// Headers of the answer besides its content type: `Retry-After` (429), `Allow` (405).
    var headers: HTTPFields = [:]

    init(_ status: HTTPResponse.Status, _ detail: String, retryAfter: Int? = nil) {
        self.status = status
        self.detail = detail
        if let retryAfter { headers[.retryAfter] = "\(retryAfter)" }
    }

    private enum CodingKeys: String, CodingKey { case type, title, status, detail }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode("about:blank", forKey: .type)
        try container.encode(status.reasonPhrase, forKey: .title)
        try container.encode(status.code, forKey: .status)
        try container.encode(detail, forKey: .detail)
    }

    func response() -> Response {
        var headers = self.headers
        headers[.contentType] = "application/problem+json"
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        let body = (try? encoder.encode(self)) ?? Data()
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}

extension Problem {
    static let unavailable = Problem(
        .serviceUnavailable, "a service behind the gateway is unavailable; retry in a moment")
    static let timeout = Problem(
        .gatewayTimeout, "a service behind the gateway did not answer in time; retry (with the same Idempotency-Key)")
    static let internalError = Problem(
        .internalServerError, "something went wrong on our side; retry, and report it if it persists")

    /// The problem of any error a request ended with: ours, a service's status, a body that does not decode,
    /// a request the OpenAPI runtime refused, or Hummingbird's own (no such route).
    static func of(_ error: any Error) -> Problem {
        switch error {
        case let problem as Problem: return problem
        case let error as ServerError: return of(error)
        case let error as RPCError: return Problem(error)
        case let error as DecodingError: return Problem(error)
        case let error as HTTPError:
            return Problem(error.status, error.body ?? "\(error.status.reasonPhrase.lowercased())")
        default: return .internalError
        }
    }

    /// What went wrong, for the log: the operation and the handler's error, without the request it came with.
    static func cause(of error: any Error) -> String {
        guard let error = error as? ServerError else { return "\(error)" }
        return "\(error.operationID): \(error.underlyingError)"
    }

    private static func of(_ error: ServerError) -> Problem {
        switch error.underlyingError {
        case let decoding as DecodingError where Self.isQueryError(decoding):
            // Bodies are JSON objects: a scalar that does not decode at the top is a query parameter's value.
            let names = URLComponents(string: error.request.path ?? "")?.queryItems?.map(\.name) ?? []
            return Problem(
                .badRequest,
                "a query parameter (\(names.joined(separator: ", "))) has a value of the wrong type: see /openapi.yaml")
        case is Problem, is RPCError, is DecodingError: return of(error.underlyingError)
        default:
            // The runtime's own refusals (a missing header, a wrong content type, a query parameter that is not a
            // number): its status, and its description, which names the parameter.
            guard error.httpStatus.kind == .clientError else { return .internalError }
            return Problem(error.httpStatus, "the request is malformed: \(error.causeDescription)")
        }
    }

    private static func isQueryError(_ error: DecodingError) -> Bool {
        guard case .typeMismatch(let type, let context) = error, context.codingPath.isEmpty else { return false }
        return type is Int32.Type || type is Int.Type || type is String.Type
    }

    /// A service's answer as HTTP. `INVALID_ARGUMENT` is a 422 (a rule broken) unless the operation says
    /// otherwise (a page parameter: 400); `RESOURCE_EXHAUSTED` a 429 (too many logins) unless the operation says
    /// otherwise (no vessel has room: 409, the fleet's state).
    init(
        _ error: RPCError, invalid: HTTPResponse.Status = .unprocessableContent,
        exhausted: HTTPResponse.Status = .tooManyRequests
    ) {
        switch error.code {
        case .invalidArgument, .failedPrecondition, .outOfRange: self.init(invalid, error.message)
        case .unauthenticated: self.init(.unauthorized, error.message)
        case .permissionDenied: self.init(.forbidden, error.message)
        case .notFound: self.init(.notFound, error.message)
        case .alreadyExists, .aborted: self.init(.conflict, error.message)
        case .resourceExhausted:
            // The service's own wait when it sent one (a throttled login says when), else a minute.
            let wait = error.metadata[stringValues: ShippyError.retryAfterMetadataKey].first(where: { _ in true })
                .flatMap { Int($0) }
            self.init(exhausted, error.message, retryAfter: exhausted == .tooManyRequests ? max(1, wait ?? 60) : nil)
        case .unavailable, .cancelled: self = .unavailable
        case .deadlineExceeded: self = .timeout
        default: self = .internalError
        }
    }

    /// A body that is not the document's JSON: a 400 naming the field.
    init(_ error: DecodingError) {
        func field(_ path: [any CodingKey], _ last: (any CodingKey)? = nil) -> String {
            let keys = path + (last.map { [$0] } ?? [])
            var name = ""
            for key in keys {
                if let index = key.intValue {
                    name += "[\(index)]"
                } else {
                    name += name.isEmpty ? key.stringValue : ".\(key.stringValue)"
                }
            }
            return name.isEmpty ? "the body" : "field `\(name)`"
        }
        switch error {
        case .keyNotFound(let key, let context):
            self.init(.badRequest, "\(field(context.codingPath, key)) is required")
        case .typeMismatch(let type, let context):
            self.init(.badRequest, "\(field(context.codingPath)) must be \(Self.kind(of: type))")
        case .valueNotFound(let type, let context):
            self.init(.badRequest, "\(field(context.codingPath)) must be \(Self.kind(of: type)), not null")
        case .dataCorrupted(let context):
            if context.debugDescription.hasPrefix("Additional properties") {
                self.init(.badRequest, "\(field(context.codingPath)) is not a known field: see /openapi.yaml")
            } else if context.codingPath.isEmpty {
                self.init(.badRequest, "the body is not valid JSON")
            } else {
                self.init(.badRequest, "\(field(context.codingPath)) has a value that is not allowed")
            }
        @unknown default:
            self.init(.badRequest, "the body is not the JSON this operation takes: see /openapi.yaml")
        }
    }

    private static func kind(of type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int32.Type, is Int.Type, is Int64.Type: "a whole number"
        case is Bool.Type: "true or false"
        case is Double.Type, is Float.Type: "a number"
        default: "\(type)".hasPrefix("Array") ? "a list" : "an object"
        }
    }
}
