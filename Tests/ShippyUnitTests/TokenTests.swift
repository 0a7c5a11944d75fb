import Foundation
import JWTKit
import ShippyDomain
import ShippyIdentity
import ShippyTestSupport
import Testing

/// Token signing and local verification: every malformed, forged, expired or misdirected token is
/// `unauthenticated` with a reason, and nothing crashes.
@Suite struct TokenTests {
    static let user = User(
        id: "8a0b5c1e-0000-4000-8000-000000000001", name: "Ewan", company: "BBC", email: "ewan@example.com")
    let key = ES256PrivateKey()

    func signer(
        audience: String = "shippy", issuer: String = "shippy-user-service", lifetime: Duration = .seconds(3600)
    )
        async -> TokenSigner
    {
        await TokenSigner(privateKey: key, issuer: issuer, audience: audience, lifetime: lifetime)
    }

    func expectRejected(_ token: String, reason: String, by verifier: TokenVerifier) async {
        await #expect {
            _ = try await verifier.verify(token)
        } throws: { error in
            guard let error = error as? ShippyError else { return false }
            return error.code == .unauthenticated && error.message.contains(reason)
        }
    }

    @Test func adminRoleTravelsInTheTokenAndOldTokensWithoutRolesArePlainUsers() async throws {
        let signer = await signer()
        #expect(try await signer.verifier.verify(try await signer.sign(Self.user, roles: [.admin])).isAdmin)
        var legacy = AccessClaims(
            user: Self.user, roles: [], issuedAt: Date(), lifetime: .seconds(60), issuer: "shippy-user-service",
            audience: "shippy")
        legacy.roles = nil
        #expect(!legacy.isAdmin)
        #expect(throws: ShippyError.permissionDenied("only an admin may list users")) {
            try legacy.requireAdmin(to: "list users")
        }
    }

    @Test func validTokenCarriesTheUserAndNoSecret() async throws {
        let signer = await signer()
        let token = try await signer.sign(Self.user)
        let claims = try await signer.verifier.verify(token)
        #expect(claims.userID == Self.user.id)
        #expect(claims.email == Self.user.email && claims.name == "Ewan" && claims.company == "BBC")
        #expect(claims.iss.value == "shippy-user-service" && claims.aud.value == ["shippy"])
        let payload = try #require(Data(base64URL: token.split(separator: ".")[1]))
        let fields = try #require(try JSONSerialization.jsonObject(with: payload) as? [String: Any])
        #expect(Set(fields.keys) == ["sub", "email", "name", "company", "iat", "exp", "iss", "aud", "roles"])
        #expect(fields["roles"] as? [String] == ["user"] && !claims.isAdmin)
        let header = try #require(Data(base64URL: token.split(separator: ".")[0]))
        let headerFields = try #require(try JSONSerialization.jsonObject(with: header) as? [String: Any])
        #expect(headerFields["alg"] as? String == "ES256")
        #expect(headerFields["kid"] as? String == TokenKeys.keyID(of: key.publicKey))
    }

    @Test(arguments: ["", "abc", "111", "111.111.111", "a.b.c", "..", "a..c", String(repeating: ".", count: 10_000)])
    func malformedTokenIsUnauthenticated(token: String) async {
        await expectRejected(token, reason: "invalid token", by: await signer().verifier)
    }

    @Test func tokenSignedByAnotherKeyIsUnauthenticated() async throws {
        let verifier = await signer().verifier
        let stranger = await TokenSigner(
            privateKey: ES256PrivateKey(), issuer: "shippy-user-service", audience: "shippy", lifetime: .seconds(60))
        await expectRejected(try await stranger.sign(Self.user), reason: "not signed by a known key", by: verifier)

        // The stranger claims our key id: the signature gives it away.
        let forger = JWTKeyCollection()
        await forger.add(ecdsa: ES256PrivateKey(), kid: JWKIdentifier(string: TokenKeys.keyID(of: key.publicKey)))
        let claims = AccessClaims(
            user: Self.user, roles: [.user], issuedAt: Date(), lifetime: .seconds(60), issuer: "shippy-user-service",
            audience: "shippy")
        let forged = try await forger.sign(claims, kid: JWKIdentifier(string: TokenKeys.keyID(of: key.publicKey)))
        await expectRejected(forged, reason: "bad signature", by: verifier)
    }

    @Test func algNoneIsUnauthenticated() async throws {
        let verifier = await signer().verifier
        let valid = try await signer().sign(Self.user)
        let payload = valid.split(separator: ".")[1]
        let header = base64URL(#"{"alg":"none","typ":"JWT","kid":"\#(TokenKeys.keyID(of: key.publicKey))"}"#)
        await expectRejected("\(header).\(payload).", reason: "invalid token", by: verifier)
        await expectRejected("\(header).\(payload).c2ln", reason: "algorithm \"none\" is not accepted", by: verifier)
    }

    @Test func hmacTokenKeyedWithThePublicKeyIsUnauthenticated() async throws {
        let verifier = await signer().verifier
        let kid = JWKIdentifier(string: TokenKeys.keyID(of: key.publicKey))
        let confused = JWTKeyCollection()
        await confused.add(hmac: HMACKey(from: key.publicKey.pemRepresentation), digestAlgorithm: .sha256, kid: kid)
        let claims = AccessClaims(
            user: Self.user, roles: [.user], issuedAt: Date(), lifetime: .seconds(60), issuer: "shippy-user-service",
            audience: "shippy")
        await expectRejected(
            try await confused.sign(claims, kid: kid), reason: "algorithm \"HS256\" is not accepted", by: verifier)
    }

    @Test func expiredTokenIsUnauthenticated() async throws {
        let signer = await signer(lifetime: .seconds(60))
        let token = try await signer.sign(Self.user, now: Date().addingTimeInterval(-3600))
        await expectRejected(token, reason: "expired", by: signer.verifier)
    }

    @Test func wrongAudienceOrIssuerIsUnauthenticated() async throws {
        let verifier = await signer().verifier
        await expectRejected(
            try await signer(audience: "billing").sign(Self.user), reason: "wrong audience", by: verifier)
        await expectRejected(
            try await signer(issuer: "someone-else").sign(Self.user), reason: "wrong issuer", by: verifier)
    }

    @Test func verifierWithOnlyThePublicKeyAcceptsTheToken() async throws {
        let pem = key.publicKey.pemRepresentation + "\n" + ES256PrivateKey().publicKey.pemRepresentation
        let keys = try TokenKeys.publicKeys(pem: pem, source: "test")
        #expect(keys.count == 2)
        let verifier = await TokenVerifier(publicKeys: keys, issuer: "shippy-user-service", audience: "shippy")
        let claims = try await verifier.verify(try await signer().sign(Self.user))
        #expect(claims.userID == Self.user.id)
    }

    /// Fuzz: thousands of random strings, random three-part tokens, and single-character mutations of a
    /// valid token. Every one is refused with `unauthenticated`; none crashes or is accepted.
    @Test func thousandsOfRandomTokensAreAllUnauthenticated() async throws {
        let signer = await signer()
        let valid = try await signer.sign(Self.user)
        var generator = SeededGenerator(seed: 0x70ce)
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ")
        var tokens: [String] = []
        for _ in 0..<1000 {
            let bytes = (0..<Int.random(in: 0...300, using: &generator)).map { _ in
                UInt8.random(in: 0...255, using: &generator)
            }
            tokens.append(String(decoding: bytes, as: UTF8.self))
        }
        for _ in 0..<1000 {
            let parts = (0..<3).map { _ in
                String(
                    (0..<Int.random(in: 1...120, using: &generator)).map { _ in
                        alphabet.randomElement(using: &generator)!
                    })
            }
            tokens.append(parts.joined(separator: "."))
        }
        let characters = Array(valid)
        let segmentEnds = Set(characters.indices.filter { $0 == characters.count - 1 || characters[$0 + 1] == "." })
        for _ in 0..<1000 {
            var mutated = characters
            // The last character of a base64url segment may carry unused bits; change the others only.
            let index = characters.indices.filter { !segmentEnds.contains($0) }.randomElement(using: &generator)!
            mutated[index] = alphabet.filter { $0 != characters[index] }.randomElement(using: &generator)!
            tokens.append(String(mutated))
        }
        var accepted: [String] = []
        for token in tokens {
            do {
                _ = try await signer.verifier.verify(token)
                accepted.append(token)
            } catch {
                #expect(error.code == .unauthenticated)
            }
        }
        #expect(accepted.isEmpty, "accepted: \(accepted.prefix(3))")
        #expect(try await signer.verifier.verify(valid).userID == Self.user.id)
    }

    func base64URL(_ text: String) -> String {
        Data(text.utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
