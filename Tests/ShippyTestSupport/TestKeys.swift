import Foundation
import GRPCCore
import JWTKit
import ShippyDomain
import ShippyIdentity

/// A signing key of a test's own, its public key written where services started by the test read it
/// (`JWT_PUBLIC_KEY_FILE`), so that the test can mint tokens for any user and role.
package struct TestKeys: Sendable {
    package let privateKey = ES256PrivateKey()
    package let publicKeyFile: String

    package init() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("shippy-keys-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        publicKeyFile = folder.appendingPathComponent("public.pem").path
        try (privateKey.publicKey.pemRepresentation + "\n").write(
            toFile: publicKeyFile, atomically: true, encoding: .utf8)
    }

    package func signer() async -> TokenSigner {
        await TokenSigner(
            privateKey: privateKey, issuer: "shippy-user-service", audience: "shippy", lifetime: .seconds(3600))
    }

    /// `authorization: Bearer …` for `user` with `roles`.
    package func bearer(_ user: User, roles: [Role] = [.user]) async throws -> Metadata {
        ["authorization": "Bearer \(try await signer().sign(user, roles: roles))"]
    }

    /// A user of the test's own making.
    package static func user(_ name: String) -> User {
        User(id: UUID().uuidString.lowercased(), name: name, company: "Test", email: "\(name.lowercased())@example.com")
    }
}
