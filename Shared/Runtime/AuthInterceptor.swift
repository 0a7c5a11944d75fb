import GRPCCore
import ShippyDomain
import ShippyIdentity

/// Verifies the caller's token before a protected method runs, and binds the `Caller` (its claims and the token)
/// for the handler and everything it calls: nothing downstream reads the token from metadata again.
///
/// The token travels as metadata `authorization: Bearer <jwt>`; the original shippy's `token: <jwt>` is
/// accepted too. A missing or bad token is `unauthenticated` at once, with the reason.
public struct AuthInterceptor: ServerInterceptor {
    /// The current call's verified caller; set for every protected method.
    @TaskLocal public static var caller: Caller?

    private let verifier: any TokenVerifying
    private let service: ServiceDescriptor
    private let publicMethods: Set<MethodDescriptor>

    /// - Parameters:
    ///   - service: the service whose methods need a token; others on the server (health) are left alone.
    ///   - publicMethods: its methods that need no token (sign-up, login, token validation).
    public init(
        verifier: any TokenVerifying, protecting service: ServiceDescriptor, publicMethods: Set<MethodDescriptor> = []
    ) {
        self.verifier = verifier
        self.service = service
        self.publicMethods = publicMethods
    }

    public func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        guard context.descriptor.service == service, !publicMethods.contains(context.descriptor) else {
            return try await next(request, context)
        }
        let token = try Self.token(in: request.metadata)
        let caller = Caller(claims: try await verifier.verify(token), token: token)
        return try await Self.$caller.withValue(caller) { try await next(request, context) }
    }

    /// The verified caller of the current call, for handlers of protected methods.
    /// - Throws: `ShippyError` `.unauthenticated` when the call carried no verified token.
    public static func requireCaller() throws(ShippyError) -> Caller {
        guard let caller else { throw ShippyError(.unauthenticated, "this call needs a token") }
        return caller
    }

    /// The claims of the current call's verified token, for handlers of protected methods.
    /// - Throws: `ShippyError` `.unauthenticated` when the call carried no verified token.
    public static func requireClaims() throws(ShippyError) -> AccessClaims {
        try requireCaller().claims
    }

    /// The token in `authorization: Bearer …` or, as the original shippy sent it, in `token: …`.
    /// - Throws: `ShippyError` `.unauthenticated` when neither is present.
    public static func token(in metadata: Metadata) throws(ShippyError) -> String {
        for value in metadata[stringValues: "authorization"] {
            if let token = bearerToken(inAuthorization: value) { return token }
        }
        if let token = metadata[stringValues: "token"].first(where: { _ in true }) {
            return trimmed(token[...])
        }
        throw ShippyError(
            .unauthenticated, "missing token: send metadata \"authorization: Bearer <token>\" (log in with user-cli)")
    }

    /// The token of an `Authorization` value `Bearer <token>` (the scheme in any letter case, blanks around the
    /// token dropped); `nil` for any other scheme. The gateway reads its HTTP header with it too.
    public static func bearerToken(inAuthorization value: String) -> String? {
        let parts = value.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        return trimmed(parts[1])
    }

    /// `text` without the blanks around it. (Foundation's `trimmingCharacters` copies the token into an NSString:
    /// a tenth of the CPU of a cheap call, seen with perf.)
    static func trimmed(_ text: Substring) -> String {
        let start = text.firstIndex { !$0.isWhitespace } ?? text.endIndex
        let end = text.lastIndex { !$0.isWhitespace }.map(text.index(after:)) ?? start
        return String(text[start..<end])
    }
}
