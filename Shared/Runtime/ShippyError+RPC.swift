import GRPCCore
import ShippyDomain

/// The one place where domain errors become gRPC status codes; the message goes to the client as is.
extension ShippyError: RPCErrorConvertible {
    public var rpcErrorCode: RPCError.Code {
        switch code {
        case .invalidArgument: .invalidArgument
        case .notFound: .notFound
        case .alreadyExists: .alreadyExists
        case .resourceExhausted: .resourceExhausted
        case .unauthenticated: .unauthenticated
        case .permissionDenied: .permissionDenied
        case .failedPrecondition: .failedPrecondition
        case .unavailable: .unavailable
        case .deadlineExceeded: .deadlineExceeded
        case .internal: .internalError
        }
    }

    public var rpcErrorMessage: String { message }

    public var rpcErrorMetadata: Metadata {
        dependency.map { [Self.dependencyMetadataKey: "\($0)"] } ?? [:]
    }

    /// Never expose the underlying error to the transport layer's logs or clients.
    public var rpcErrorCause: (any Error)? { nil }
}
