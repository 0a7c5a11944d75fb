import Foundation
import JWTKit
import ShippyDomain
import ShippyIdentity
import ShippyRuntime
import ShippyTestSupport
import Testing

/// The public-key file as a Kubernetes Secret volume lays it out: `public.pem` links to `..data/public.pem`,
/// `..data` links to a timestamped folder, and an update swaps `..data` in one rename. The file's own link,
/// and its time, never change.
@Suite struct KeyFileTests {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("shippy-secret-\(UUID().uuidString)")
        .path
    let kept = ES256PrivateKey()
    let removed = ES256PrivateKey()
    static let user = User(
        id: "8a0b5c1e-0000-4000-8000-000000000002", name: "Ann", company: "", email: "ann@example.com")

    /// Writes `keys` into a new timestamped folder and swaps `..data` to it, as the kubelet does.
    func publish(_ keys: [ES256PrivateKey], version: Int) throws {
        let versioned = "\(folder)/..2026_12_04_\(version)"
        try FileManager.default.createDirectory(atPath: versioned, withIntermediateDirectories: true)
        let pem = try keys.map { try $0.publicKey.pemRepresentation }.joined(separator: "\n")
        try pem.write(toFile: "\(versioned)/public.pem", atomically: false, encoding: .utf8)
        // Every version carries the same time: only the contents tell them apart.
        try FileManager.default.setAttributes(
            [.modificationDate: Date(timeIntervalSince1970: 1_700_000_000)], ofItemAtPath: "\(versioned)/public.pem")
        try? FileManager.default.removeItem(atPath: "\(folder)/..data_tmp")
        try FileManager.default.createSymbolicLink(
            atPath: "\(folder)/..data_tmp", withDestinationPath: "..2026_12_04_\(version)")
        #expect(rename("\(folder)/..data_tmp", "\(folder)/..data") == 0)
        if !FileManager.default.fileExists(atPath: "\(folder)/public.pem") {
            try FileManager.default.createSymbolicLink(
                atPath: "\(folder)/public.pem", withDestinationPath: "..data/public.pem")
        }
    }

    func token(_ key: ES256PrivateKey) async throws -> String {
        try await TokenSigner(
            privateKey: key, issuer: "shippy-user-service", audience: "shippy", lifetime: .seconds(600)
        ).sign(Self.user)
    }

    @Test func aKeyRemovedFromASecretVolumeStopsVerifyingWithinTheRefreshInterval() async throws {
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try publish([kept, removed], version: 1)
        let verifier = PublicKeyFileVerifier(
            path: "\(folder)/public.pem", issuer: "shippy-user-service", audience: "shippy",
            refreshInterval: .milliseconds(200))
        try await verifier.load()
        let keptToken = try await token(kept)
        let removedToken = try await token(removed)
        #expect(try await verifier.verify(removedToken).userID == Self.user.id)

        try publish([kept], version: 2)
        // The bound is the refresh interval; the wait allows far more, for a slow machine.
        let refused = await eventually(within: .seconds(10)) {
            do {
                _ = try await verifier.verify(removedToken)
                return false
            } catch {
                return (error as? ShippyError)?.code == .unauthenticated
            }
        }
        #expect(refused, "a token of the removed key still verifies")
        #expect(try await verifier.verify(keptToken).userID == Self.user.id, "the kept key still verifies")
    }
}
