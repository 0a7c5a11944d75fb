import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import ShippyContracts
import ShippyDiscovery
import ShippyTestSupport
import Testing

@testable import ShippyRuntime

/// Refused TLS handshakes on a server over a real socket: each kind is named by its reason in the log; a peer gets
/// one log line a minute however many handshakes it breaks; and garbage from many connections harms no other
/// connection. Invariant: whatever a peer sends, the server keeps serving every verified client.
@Suite(.timeLimit(.minutes(2))) struct HandshakeRefusalsTests {
    static let refusedLine = "TLS handshake refused"

    @Test func eachKindOfRefusedHandshakeIsLoggedWithItsReason() async throws {
        let authority = try TestAuthority()
        let stranger = try TestAuthority(name: "Another CA")
        let strangerIdentity = try stranger.issue("consignment-service")
        let trustsUs: (TLSFiles) -> TLSFiles = {
            TLSFiles(certificate: $0.certificate, key: $0.key, authorities: authority.bundle)
        }
        typealias Attempt = (Int) async throws -> Void
        func call(_ security: HTTP2ClientTransport.Posix.TransportSecurity) -> Attempt {
            { port in
                _ = await CallerIdentityTests.check(try ServiceAddress.target("127.0.0.1:\(port)", key: "t"), security)
            }
        }
        func send(_ bytes: [UInt8]) -> Attempt {
            { port in
                let connection = try RawConnection(port: port)
                _ = connection.send(bytes)
                // Closes once the server has answered or given up, or when the test's patience ends.
                _ = await eventually(within: .seconds(2)) { connection.isClosedByPeer }
            }
        }
        let cases: [(String, HandshakeRefusals.Reason, Attempt)] = [
            ("plaintext gRPC", .notTLS, call(.plaintext)),
            ("HTTP/1", .notTLS, send(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8))),
            (
                "no certificate", .noCertificate,
                call(.tls { $0.trustRoots = .certificates([.file(path: authority.bundle, format: .pem)]) })
            ),
            ("another authority's certificate", .untrustedCertificate, call(trustsUs(strangerIdentity).client)),
            (
                "expired", .untrustedCertificate,
                call(try authority.issue("consignment-service", validUntil: Date(timeIntervalSinceNow: -60)).client)
            ),
            (
                "not yet valid", .untrustedCertificate,
                call(try authority.issue("consignment-service", validFrom: Date(timeIntervalSinceNow: 3600)).client)
            ),
            ("a client that distrusts ours", .refusedByPeer, call(strangerIdentity.client)),
            // The start of a ClientHello record, then nothing: the peer leaves mid-handshake.
            (
                "truncated", .closed,
                { port in _ = try RawConnection(port: port).send([0x16, 0x03, 0x01, 0x00, 0xC8, 0x01]) }
            ),
            ("connected and gone", .closed, { port in _ = try RawConnection(port: port) }),
        ]
        for (kind, reason, attempt) in cases {
            // A server each, as a peer's second refusal within the minute is not logged.
            let logs = LogCapture()
            let health = HealthService(services: [])
            health.setServing(true)
            try await withHealthServerOnSocket(
                health, tls: try authority.issue("vessel-service"), logger: logs.logger()
            ) { port in
                try await attempt(port)
                let logged = await eventually(within: .seconds(5)) { !Self.refusals(in: logs).isEmpty }
                let lines = Self.refusals(in: logs)
                #expect(logged && lines.count == 1, "\(kind): \(lines)\n\(logs.all)")
                #expect(lines.first?["reason"] == reason.rawValue, "\(kind): \(lines)")
                #expect(lines.first?["peer"] == "127.0.0.1", "\(kind): \(lines)")
                #expect(
                    await CallerIdentityTests.check(
                        try ServiceAddress.target("127.0.0.1:\(port)", key: "t"),
                        try authority.issue("consignment-service").client) == nil, "\(kind): the next client is served")
            }
        }
    }

    /// Seeded garbage (some of it the start of a TLS record, so that it gets past the first byte) from six peers,
    /// beside a verified client calling all along: every call of that client is answered, and each peer has one
    /// log line for the minute.
    @Test func garbageFromManyPeersHarmsNoOtherConnectionAndEachPeerIsLoggedOnce() async throws {
        let authority = try TestAuthority()
        let logs = LogCapture()
        let health = HealthService(services: [])
        health.setServing(true)
        let peers = (2...7).map { "127.0.0.\($0)" }
        try await withHealthServerOnSocket(
            health, tls: try authority.issue("vessel-service"), logger: logs.logger()
        ) { port in
            let target = try ServiceAddress.target("127.0.0.1:\(port)", key: "t")
            let transport = try HTTP2ClientTransport.Posix(
                target: target, transportSecurity: try authority.issue("consignment-service").client)
            try await withGRPCClient(transport: transport) { client in
                let checks = Grpc_Health_V1_Health.Client(wrapping: client)
                _ = try await checks.check(.init())
                var generator = SeededGenerator(seed: 25)
                for round in 0..<120 {
                    var bytes = (0..<Int.random(in: 0...600, using: &generator)).map { _ in
                        UInt8.random(in: 0...255, using: &generator)
                    }
                    if round % 2 == 0 { bytes = [0x16, 0x03, 0x01] + bytes }
                    let connection = try RawConnection(port: port, from: peers[round % peers.count])
                    _ = connection.send(bytes)
                    if round % 10 == 0 { _ = try await checks.check(.init()) }
                }
                _ = try await checks.check(.init())
            }
            let everyPeer = await eventually(within: .seconds(5)) {
                Set(Self.refusals(in: logs).compactMap { $0["peer"] }) == Set(peers)
            }
            let lines = Self.refusals(in: logs)
            #expect(everyPeer && lines.compactMap { $0["peer"] }.sorted() == peers, "one line each: \(lines)")
            let reasons = Set(HandshakeRefusals.Reason.allCases.map(\.rawValue))
            #expect(lines.allSatisfy { reasons.contains($0["reason"] ?? "") }, "\(lines)")
        }
    }

    @Test func aPeersRefusalsShareOneLineAMinuteAndTheRememberedPeersAreBounded() {
        let refusals = HandshakeRefusals(logger: Logger(label: "test"))
        let start = ContinuousClock.now
        #expect(refusals.opensWindow(for: "10.0.0.1", now: start) == 0)
        #expect(refusals.opensWindow(for: "10.0.0.1", now: start + .seconds(1)) == nil)
        #expect(refusals.opensWindow(for: "10.0.0.1", now: start + .seconds(59)) == nil)
        #expect(refusals.opensWindow(for: "10.0.0.2", now: start + .seconds(2)) == 0, "another peer")
        #expect(refusals.opensWindow(for: "10.0.0.1", now: start + .seconds(61)) == 2, "the unlogged are told")

        let crowd = HandshakeRefusals(logger: Logger(label: "test"))
        for peer in 0..<HandshakeRefusals.peersRemembered {
            #expect(crowd.opensWindow(for: "peer \(peer)", now: start) == 0)
        }
        #expect(crowd.opensWindow(for: "one more", now: start + .seconds(1)) == nil, "counted, not logged")
        #expect(crowd.opensWindow(for: "one more", now: start + .seconds(61)) == 0, "the old windows are gone")
    }

    /// The refusal lines a server logged, as their fields.
    static func refusals(in logs: LogCapture) -> [[String: String]] {
        logs.all.compactMap { line in
            let fields = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: String]
            return fields?["msg"] == refusedLine ? fields : nil
        }
    }
}
