import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import ShippyContracts
import ShippyDiscovery
import ShippyRuntime
import ShippyTestSupport
import Synchronization
import Testing

/// A server's certificate is rotated by replacing its files, without a restart: new connections get the new one
/// while a client already connected keeps calling without a failure; a replacement that is expired is refused (the
/// previous certificate stays, with one error in the log); and a service does not start on one.
@Suite(.timeLimit(.minutes(1))) struct CertificateRotationTests {
    @Test func aReplacedCertificateServesNewConnectionsAndNoCallFails() async throws {
        let old = try TestAuthority(name: "Old CA")
        let new = try TestAuthority(name: "New CA")
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("shippy-rotation-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let both = folder.appendingPathComponent("authorities.pem").path
        try
            (try String(contentsOfFile: old.bundle, encoding: .utf8)
            + String(contentsOfFile: new.bundle, encoding: .utf8))
            .write(toFile: both, atomically: true, encoding: .utf8)
        let served = TLSFiles(
            certificate: folder.appendingPathComponent("server.pem").path,
            key: folder.appendingPathComponent("server-key.pem").path, authorities: both)
        func install(_ files: TLSFiles) throws {
            for (from, to) in [(files.key, served.key), (files.certificate, served.certificate)] {
                try String(contentsOfFile: from, encoding: .utf8).write(toFile: to, atomically: true, encoding: .utf8)
            }
        }
        try install(try old.issue("vessel-service"))
        let logs = LogCapture()
        let health = HealthService(services: [])
        health.setServing(true)
        try await withHealthServerOnSocket(
            health, tls: served, rotation: .milliseconds(200), logger: logs.logger()
        ) { port in
            let target = try ServiceAddress.target("127.0.0.1:\(port)", key: "test")
            // Trusts the new authority only: refused until the server presents the new certificate.
            let newOnly = try new.issue("consignment-service").client
            #expect(await CallerIdentityTests.check(target, newOnly) != nil, "the old certificate is not trusted")

            // A client trusting both keeps one connection and calls through the rotation.
            var trustingBoth = try old.issue("consignment-service")
            trustingBoth.authorities = both
            let failures = Atomic(0)
            let calls = Atomic(0)
            let stop = Atomic(false)
            let security = trustingBoth.client
            let steady = Task {
                let target = try ServiceAddress.target("127.0.0.1:\(port)", key: "test")
                try await withGRPCClient(
                    transport: try HTTP2ClientTransport.Posix(target: target, transportSecurity: security)
                ) { client in
                    let health = Grpc_Health_V1_Health.Client(wrapping: client)
                    while !stop.load(ordering: .relaxed) {
                        do {
                            _ = try await health.check(.init())
                        } catch {
                            failures.add(1, ordering: .relaxed)
                        }
                        calls.add(1, ordering: .relaxed)
                        try? await Task.sleep(for: .milliseconds(20))
                    }
                }
            }
            #expect(await eventually(within: .seconds(10)) { calls.load(ordering: .relaxed) > 5 })
            try install(try new.issue("vessel-service"))
            #expect(
                await eventually(within: .seconds(10)) { await CallerIdentityTests.check(target, newOnly) == nil },
                "new connections get the new certificate")
            #expect(logs.all.contains { $0.contains("certificate loaded") && $0.contains("vessel-service") })

            // An expired certificate is refused once, and the current one stays.
            try install(try new.issue("vessel-service", validUntil: Date(timeIntervalSinceNow: -60)))
            #expect(await eventually(within: .seconds(10)) { logs.all.contains { $0.contains("certificate refused") } })
            try await Task.sleep(for: .seconds(1))
            #expect(logs.all.filter { $0.contains("certificate refused") }.count == 1, "logged once, not each reload")
            #expect(await CallerIdentityTests.check(target, newOnly) == nil, "the current certificate stays")

            stop.store(true, ordering: .relaxed)
            try await steady.value
            #expect(failures.load(ordering: .relaxed) == 0, "of \(calls.load(ordering: .relaxed)) calls")
        }
    }

    @Test func aServiceDoesNotStartOnACertificateThatIsNotValidNow() throws {
        let authority = try TestAuthority()
        let expired = try authority.issue("vessel-service", validUntil: Date(timeIntervalSinceNow: -60))
        #expect(throws: (any Error).self) {
            try CertificateRotation(files: expired, logger: Logger(label: "test"))
        }
        do {
            _ = try CertificateRotation(files: expired, logger: Logger(label: "test"))
        } catch {
            #expect("\(error)".contains("TLS_CERTIFICATE") && "\(error)".contains("expired"), "\(error)")
        }
    }
}
