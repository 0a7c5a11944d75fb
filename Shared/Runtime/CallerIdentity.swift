import GRPCCore
import GRPCNIOTransportHTTP2
import X509

/// Who is calling, as its client certificate says: the common name of the certificate the peer presented in the
/// TLS handshake, which the server verified against its authorities (`TLSFiles`). `nil` over plaintext and in
/// process. A token says which user a call is for; this says which program makes it.
public enum CallerIdentity {
    @TaskLocal public static var current: String?

    /// The common name of the call's verified peer certificate.
    static func of(_ context: ServerContext) -> String? {
        guard let context = context.transportSpecific as? HTTP2ServerTransport.Posix.Context,
            let certificate = context.peerCertificate
        else { return nil }
        let names = certificate.subject.flatMap { $0 }.filter { $0.type == .RDNAttributeType.commonName }
        return names.first.map { String(describing: $0.value) }
    }
}

/// Binds `CallerIdentity.current` for the handler, and refuses a call of a method that only some programs may
/// call (vessel-service's `Book`, say: consignment-service alone) from any other, before its token is looked at.
struct CallerIdentityInterceptor: ServerInterceptor {
    /// The methods only some identities may call, and those identities.
    let restricted: [MethodDescriptor: Set<String>]

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        let identity = CallerIdentity.of(context)
        if let allowed = restricted[context.descriptor], !allowed.contains(identity ?? "") {
            throw RPCError(
                code: .permissionDenied,
                message: "\(context.descriptor.method) is for \(allowed.sorted().joined(separator: " and ")) only; "
                    + "this call's certificate names \(identity.map { "\"\($0)\"" } ?? "no one")")
        }
        return try await CallerIdentity.$current.withValue(identity) { try await next(request, context) }
    }
}
