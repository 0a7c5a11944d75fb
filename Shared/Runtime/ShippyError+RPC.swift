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

    /// A failure of a dependency names it, and tells clients not to retry (gRPC's retry pushback, negative): the
    /// dependency failed, not this replica, so a retry elsewhere would wait for it again and only multiply the
    /// time the caller waits. Refusals while starting or draining carry no such word, and are retried.
    /// A wait the service knows of (`retryAfter`) goes with the status too.
    public var rpcErrorMetadata: Metadata {
        var metadata: Metadata = [:]
        if let dependency {
            metadata.addString(dependency, forKey: Self.dependencyMetadataKey)
            metadata.addString("-1", forKey: "grpc-retry-pushback-ms")
        }
        if let retryAfter { metadata.addString("\(retryAfter)", forKey: Self.retryAfterMetadataKey) }
        return metadata
    }

    /// Never expose the underlying error to the transport layer's logs or clients.
    public var rpcErrorCause: (any Error)? { nil }
}
