import Foundation
import ShippyDomain
import ShippyIdentity
import Synchronization

/// Anything that turns a token into verified claims.
public protocol TokenVerifying: Sendable {
    /// - Throws: `ShippyError` `.unauthenticated` with the reason.
    func verify(_ token: String) async throws(ShippyError) -> AccessClaims
}

extension TokenVerifier: TokenVerifying {}

/// Verifies tokens with the public keys in a PEM file that the user service writes
/// (`JWT_PUBLIC_KEY_FILE`). Until the file has been read, calls are `unavailable`.
public final class PublicKeyFileVerifier: TokenVerifying {
    public let path: String
    private let issuer: String
    private let audience: String
    private let verifier = Mutex<TokenVerifier?>(nil)

    public init(path: String, issuer: String, audience: String) {
        self.path = path
        self.issuer = issuer
        self.audience = audience
    }

    /// The verifier of a service's token configuration.
    /// - Throws: `ConfigurationError` naming `JWT_PUBLIC_KEY_FILE` when it is not set.
    public convenience init(_ configuration: TokenConfiguration) throws(ConfigurationError) {
        guard let path = configuration.publicKeyFile, !path.isEmpty else {
            throw ConfigurationError(
                key: "JWT_PUBLIC_KEY_FILE", flag: "jwt-public-key-file",
                problem: "is required: the PEM file where user-service publishes its public key")
        }
        self.init(path: path, issuer: configuration.issuer, audience: configuration.audience)
    }

    /// Reads the keys; the startup retry calls it until the file exists and holds a key.
    /// - Throws: `ShippyError` `.unavailable` when the file cannot be read or holds no key.
    public func load() async throws {
        guard let pem = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ShippyError.unavailable("cannot read \(path) (the user service writes it at start)")
        }
        let loaded: TokenVerifier
        do {
            let keys = try TokenKeys.publicKeys(pem: pem, source: path)
            loaded = await TokenVerifier(publicKeys: keys, issuer: issuer, audience: audience)
        } catch {
            throw ShippyError.unavailable(error.message)
        }
        verifier.withLock { $0 = loaded }
    }

    public func verify(_ token: String) async throws(ShippyError) -> AccessClaims {
        guard let verifier = verifier.withLock({ $0 }) else {
            throw .unavailable("the service is starting: token keys are not loaded yet")
        }
        return try await verifier.verify(token)
    }
}
