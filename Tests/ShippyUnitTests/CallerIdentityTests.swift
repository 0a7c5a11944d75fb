import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import ShippyContracts
import ShippyDiscovery
import ShippyRuntime
import ShippyTestSupport
import Testing

/// Mutual TLS over a real socket: a server takes a call only from a client whose certificate its authority signed
/// and whose validity has begun and not ended; and a method restricted to some programs answers only the identity
/// its caller's certificate names. The server here restricts health `Check` to consignment-service, as
/// vessel-service restricts `Book`. Invariant: every refused handshake leaves the server serving the next client.
@Suite(.timeLimit(.minutes(1))) struct CallerIdentityTests {
    static let check = Grpc_Health_V1_Health.Method.Check.descriptor

    @Test func onlyAVerifiedCertificateGetsInAndOnlyTheNamedIdentityMayCallARestrictedMethod() async throws {
        let authority = try TestAuthority()
        let stranger = try TestAuthority(name: "Another CA")
        let health = HealthService(services: [])
        health.setServing(true)
        try await withHealthServerOnSocket(
            health, tls: try authority.issue("vessel-service"), restricted: [Self.check: ["consignment-service"]]
        ) { port in
            let target = try ServiceAddress.target("127.0.0.1:\(port)", key: "test")
            let refused: [(String, HTTP2ClientTransport.Posix.TransportSecurity)] = [
                ("plaintext", .plaintext),
                (
                    "no certificate",
                    .tls { $0.trustRoots = .certificates([.file(path: authority.bundle, format: .pem)]) }
                ),
                ("another CA", try stranger.issue("consignment-service").client),
                (
                    "expired",
                    try authority.issue("consignment-service", validUntil: Date(timeIntervalSinceNow: -60)).client
                ),
                (
                    "not yet valid",
                    try authority.issue("consignment-service", validFrom: Date(timeIntervalSinceNow: 3600)).client
                ),
            ]
            for (kind, security) in refused {
                let outcome = await Self.check(target, security)
                #expect(
                    outcome == .unavailable || outcome == .deadlineExceeded, "\(kind): \(String(describing: outcome))")
            }
            let gateway = await Self.check(target, try authority.issue("api-gateway").client)
            #expect(gateway == .permissionDenied, "a verified identity not named by the method")
            #expect(await Self.check(target, try authority.issue("consignment-service").client) == nil)
        }
    }

    /// The status code of one `Check` over a new connection with `security`; `nil` when it is answered.
    static func check(
        _ target: any ResolvableTarget, _ security: HTTP2ClientTransport.Posix.TransportSecurity
    ) async -> RPCError.Code? {
        do {
            let transport = try HTTP2ClientTransport.Posix(target: target, transportSecurity: security)
            return try await withGRPCClient(transport: transport) { client in
                var options = CallOptions.defaults
                options.timeout = .seconds(3)
                _ = try await Grpc_Health_V1_Health.Client(wrapping: client).check(.init(), options: options)
                return nil
            }
        } catch let error as RPCError {
            return error.code
        } catch {
            return .unknown
        }
    }
}
