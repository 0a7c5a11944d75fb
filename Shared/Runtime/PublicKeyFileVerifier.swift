import Foundation
import Logging
import ShippyConfiguration
import ShippyDomain
import ShippyIdentity
import ShippyStorage
import Synchronization

/// Anything that turns a token into verified claims.
public protocol TokenVerifying: Sendable {
    /// - Throws: `ShippyError` `.unauthenticated` with the reason.
    func verify(_ token: String) async throws(ShippyError) -> AccessClaims
}

extension TokenVerifier: TokenVerifying {}

extension Dependency {
    /// The token public key file as a dependency: read until it exists and holds a key.
    public static func tokenKeys(_ verifier: PublicKeyFileVerifier) -> Dependency {
        Dependency(name: "token public key at \(verifier.path)", connect: { try await verifier.load() })
    }
}

/// Tokens of this process's own key first (no file read), then of any key in the shared key file: what
/// user-service verifies with, so that a token signed by another replica, or before a key rotation,
/// validates at every replica without a restart.
public struct OwnKeyThenFileVerifier: TokenVerifying {
    let own: TokenVerifier
    let file: PublicKeyFileVerifier?

    public init(own: TokenVerifier, file: PublicKeyFileVerifier?) {
        self.own = own
        self.file = file
    }

    public func verify(_ token: String) async throws(ShippyError) -> AccessClaims {
        do {
            return try await own.verify(token)
        } catch {
            guard let file, own.namesUnknownKey(token) else { throw error }
            return try await file.verify(token)
        }
    }
}

/// Verifies tokens with the public keys in a PEM file that the user service writes
/// (`JWT_PUBLIC_KEY_FILE`). Until the file has been read, calls are `unavailable`.
///
/// Keys rotate without a restart: a token naming a key this verifier does not hold makes it read the file
/// again (at most once a second: a call waits for its turn, so forged `kid`s cannot make it read the disk at
/// every call), and every `refreshInterval` a call compares the file's contents with those it loaded, so a key
/// removed from it stops being trusted within `refreshInterval` (plus `VerifiedTokenCache`'s age in front).
/// Contents, not a modification time: a Kubernetes Secret volume swaps a directory link and leaves the
/// file's own link, and its time, as they were.
public final class PublicKeyFileVerifier: TokenVerifying {
    public let path: String
    private let issuer: String
    private let audience: String
    private let refreshInterval: Duration
    private struct State {
        var verifier: TokenVerifier?
        var lastRead: ContinuousClock.Instant?
        var contents: String?
    }
    private let state = Mutex(State())
    private let logger = Logger(label: "token-keys")

    public init(path: String, issuer: String, audience: String, refreshInterval: Duration = .seconds(10)) {
        self.path = path
        self.issuer = issuer
        self.audience = audience
        self.refreshInterval = refreshInterval
    }

    /// The verifier of a service's token configuration.
    /// - Throws: `ConfigurationError` naming `JWT_PUBLIC_KEY_FILE` when it is not set.
    public convenience init(_ configuration: TokenConfiguration) throws(ConfigurationError) {
        guard let path = configuration.publicKeyFile, !path.isEmpty else {
            throw TokenSettings.publicKeyFile.error(
                "is required: the PEM file where user-service publishes its public key")
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
        state.withLock { $0 = State(verifier: loaded, lastRead: .now, contents: pem) }
    }

    public func verify(_ token: String) async throws(ShippyError) -> AccessClaims {
        guard var verifier = state.withLock({ $0.verifier }) else {
            throw .unavailable("the service is starting: token keys are not loaded yet")
        }
        if fileChanged() {
            await reread()
            verifier = state.withLock { $0.verifier } ?? verifier
        }
        do {
            return try await verifier.verify(token)
        } catch {
            // Only a well-formed token naming a key we do not hold can verify after a re-read (a rotation);
            // looking at its header here keeps that work off the path of every valid token.
            guard verifier.namesUnknownKey(token) else { throw error }
            // Wait for this second's turn, then read unless another call did meanwhile.
            let lastRead = state.withLock { $0.lastRead } ?? .now
            try? await Task.sleep(until: lastRead + Self.rereadSpacing)
            if state.withLock({ $0.lastRead.map { ContinuousClock.now - $0 >= Self.rereadSpacing } ?? true }) {
                await reread()
            }
            return try await (state.withLock { $0.verifier } ?? verifier).verify(token)
        }
    }

    /// The shortest time between two reads of the file for unknown keys.
    static let rereadSpacing: Duration = .seconds(1)

    /// A failed re-read keeps the keys already loaded: a half-written file never locks everyone out.
    private func reread() async {
        do {
            try await load()
        } catch {
            state.withLock { $0.lastRead = .now }
            logger.warning(
                "the token key file could not be read again; the keys already loaded stay",
                metadata: ["path": "\(path)", "error": "\(error)"])
        }
    }

    /// Whether the file's contents changed since they were loaded, looked at once per refresh interval (a key
    /// file is a few hundred bytes). A file that cannot be read now counts as unchanged: the keys stay.
    private func fileChanged() -> Bool {
        let now = ContinuousClock.now
        let (lastRead, contents) = state.withLock { ($0.lastRead, $0.contents) }
        guard let lastRead else { return true }
        guard now - lastRead >= refreshInterval else { return false }
        guard let current = try? String(contentsOfFile: path, encoding: .utf8), current != contents else {
            state.withLock { $0.lastRead = now }
            return false
        }
        return true
    }
}
