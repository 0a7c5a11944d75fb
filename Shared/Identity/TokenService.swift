import Foundation
import JWTKit
import ShippyDomain

/// Verifies Shippy access tokens locally, with public keys only: no call to the user service per request.
///
/// The algorithm is pinned to ES256: `alg: none`, HMAC tokens (even one keyed with the public key) and
/// any other algorithm are refused before a signature is looked at.
public struct TokenVerifier: Sendable {
    public static let maximumTokenBytes = 8192
    private let keys: JWTKeyCollection
    private let keyIDs: Set<String>
    public let issuer: String
    public let audience: String

    public init(publicKeys: [ES256PublicKey], issuer: String, audience: String) async {
        let keys = JWTKeyCollection()
        var keyIDs: Set<String> = []
        for key in publicKeys {
            let kid = TokenKeys.keyID(of: key)
            keyIDs.insert(kid)
            await keys.add(ecdsa: key, kid: JWKIdentifier(string: kid))
        }
        self.keys = keys
        self.keyIDs = keyIDs
        self.issuer = issuer
        self.audience = audience
    }

    /// The claims of a valid token.
    /// - Throws: `ShippyError` `.unauthenticated` with the reason: malformed, wrong algorithm, unknown key,
    ///   bad signature, expired, wrong issuer or audience.
    public func verify(_ token: String) async throws(ShippyError) -> AccessClaims {
        let header = try Self.header(of: token)
        guard header.alg == "ES256" else {
            throw Self.rejected("algorithm \"\(header.alg.prefix(20))\" is not accepted (ES256 only)")
        }
        guard let kid = header.kid, keyIDs.contains(kid) else {
            throw Self.rejected("it was not signed by a known key")
        }
        let claims: AccessClaims
        do {
            claims = try await keys.verify(token, as: AccessClaims.self)
        } catch let error as JWTError {
            switch error.errorType {
            case .signatureVerificationFailed: throw Self.rejected("bad signature")
            case .claimVerificationFailure where error.failedClaim is ExpirationClaim: throw Self.rejected("expired")
            default: throw Self.rejected("malformed")
            }
        } catch {
            throw Self.rejected("malformed")
        }
        guard claims.iss.value == issuer else { throw Self.rejected("wrong issuer") }
        guard claims.aud.value.contains(audience) else { throw Self.rejected("wrong audience") }
        guard !claims.sub.value.isEmpty else { throw Self.rejected("no subject") }
        return claims
    }

    /// Whether `token` is a well-formed ES256 token naming a key (`kid`) this verifier does not hold: the one
    /// case where reading the keys again can change the answer.
    public func namesUnknownKey(_ token: String) -> Bool {
        guard let header = try? Self.header(of: token), header.alg == "ES256", let kid = header.kid else {
            return false
        }
        return !keyIDs.contains(kid)
    }

    private struct Header: Decodable {
        var alg: String
        var kid: String?
    }

    /// Decodes the header by hand, bounded in size, so that garbage never reaches the JWT library.
    private static func header(of token: String) throws(ShippyError) -> Header {
        guard !token.isEmpty else { throw rejected("empty") }
        guard token.utf8.count <= maximumTokenBytes else { throw rejected("longer than \(maximumTokenBytes) bytes") }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts.allSatisfy({ !$0.isEmpty }) else {
            throw rejected("malformed (a JWT has three dot-separated parts)")
        }
        guard let data = Data(base64URL: parts[0]), let header = try? JSONDecoder().decode(Header.self, from: data)
        else { throw rejected("malformed header") }
        return header
    }

    private static func rejected(_ reason: String) -> ShippyError {
        ShippyError(.unauthenticated, "invalid token: \(reason)")
    }
}

/// Signs access tokens; only the user service has one.
public struct TokenSigner: Sendable {
    private let keys: JWTKeyCollection
    public let keyID: String
    public let verifier: TokenVerifier
    private let currentLifetime: @Sendable () -> Duration

    /// How long the next token stays valid (the configuration may change it while the service runs).
    public var lifetime: Duration { currentLifetime() }

    /// - Parameter extraPublicKeys: other keys verifiers accept (a key being rotated in or out).
    public init(
        privateKey: ES256PrivateKey,
        issuer: String,
        audience: String,
        lifetime: Duration,
        extraPublicKeys: [ES256PublicKey] = []
    ) async {
        await self.init(
            privateKey: privateKey, issuer: issuer, audience: audience, lifetime: { lifetime },
            extraPublicKeys: extraPublicKeys)
    }

    /// - Parameter lifetime: read for each token signed.
    public init(
        privateKey: ES256PrivateKey,
        issuer: String,
        audience: String,
        lifetime: @escaping @Sendable () -> Duration,
        extraPublicKeys: [ES256PublicKey] = []
    ) async {
        let kid = TokenKeys.keyID(of: privateKey.publicKey)
        let keys = JWTKeyCollection()
        await keys.add(ecdsa: privateKey, kid: JWKIdentifier(string: kid))
        self.keys = keys
        self.keyID = kid
        self.currentLifetime = lifetime
        self.verifier = await TokenVerifier(
            publicKeys: [privateKey.publicKey] + extraPublicKeys, issuer: issuer, audience: audience)
    }

    /// A token for `user` with `roles`, valid from `now` for `lifetime`.
    public func sign(_ user: User, roles: [Role] = [.user], now: Date = Date()) async throws(ShippyError) -> String {
        try await signed(user, roles: roles, now: now).token
    }

    /// A token for `user` with `roles`, valid from `now` for `lifetime`, and the claims it carries.
    public func signed(
        _ user: User, roles: [Role] = [.user], now: Date = Date()
    ) async throws(ShippyError) -> (token: String, claims: AccessClaims) {
        let claims = AccessClaims(
            user: user, roles: roles, issuedAt: now, lifetime: lifetime, issuer: verifier.issuer,
            audience: verifier.audience)
        do {
            return (try await keys.sign(claims, kid: JWKIdentifier(string: keyID)), claims)
        } catch {
            throw ShippyError(.internal, "could not sign the token")
        }
    }
}

extension Data {
    /// Decodes unpadded base64url, as JWT segments are written.
    public init?(base64URL text: Substring) {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        self.init(base64Encoded: base64)
    }
}
