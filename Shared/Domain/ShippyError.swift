/// The one error type of the domain: a stable code for callers, and a message that is safe to show a client.
///
/// Driver details (SQL text, libmongoc messages) never go into `message`; they are logged where they happen.
/// Each service maps the code to a gRPC status in one place (`ShippyError+RPC.swift` in the runtime).
public struct ShippyError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure this is; each maps to exactly one gRPC status code.
    public enum Code: String, Sendable, Hashable {
        case invalidArgument
        case notFound
        case alreadyExists
        case resourceExhausted
        case unauthenticated
        case permissionDenied
        case failedPrecondition
        case unavailable
        case deadlineExceeded
        case `internal`
    }

    public var code: Code
    public var message: String
    /// The service this one depends on that failed ("vessel-service"), when the failure is that dependency's
    /// rather than this service's: clients learn it from the status's metadata, not from the message text.
    public var dependency: String?
    /// Whole seconds after which a retry may succeed (a throttled login, a full admission queue): clients learn it
    /// from the status's metadata (`retryAfterMetadataKey`), and the gateway answers it as `Retry-After`.
    public var retryAfter: Int?

    public init(_ code: Code, _ message: String, dependency: String? = nil, retryAfter: Int? = nil) {
        self.code = code
        self.message = message
        self.dependency = dependency
        self.retryAfter = retryAfter
    }

    public var description: String { "\(code.rawValue): \(message)" }

    /// The status metadata key that names a failed dependency (`dependency`), for clients to read.
    public static let dependencyMetadataKey = "shippy-dependency"
    /// The status metadata key that carries `retryAfter`, in whole seconds.
    public static let retryAfterMetadataKey = "shippy-retry-after"

    public static func invalidArgument(_ message: String) -> ShippyError { ShippyError(.invalidArgument, message) }
    public static func notFound(_ message: String) -> ShippyError { ShippyError(.notFound, message) }
    public static func alreadyExists(_ message: String) -> ShippyError { ShippyError(.alreadyExists, message) }
    public static func unavailable(_ message: String) -> ShippyError { ShippyError(.unavailable, message) }
    public static func permissionDenied(_ message: String) -> ShippyError { ShippyError(.permissionDenied, message) }
    public static func resourceExhausted(_ message: String) -> ShippyError { ShippyError(.resourceExhausted, message) }
}
