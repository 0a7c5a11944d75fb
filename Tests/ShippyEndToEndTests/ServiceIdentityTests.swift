import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import ShippyContracts
import ShippyDiscovery
import ShippyTestSupport
import Testing

/// consignment-service and vessel-service as executables over mutual TLS, each with a certificate from the test's
/// authority: a consignment shipped through consignment-cli (its own certificate) books its room over TLS end to
/// end; vessel-service's booking methods answer consignment-service's identity only, whatever token comes with
/// the call; and a client without a certificate from the authority gets no call through at all: its handshake is
/// counted by reason, and logged once for its address in the minute.
@Suite(.timeLimit(.minutes(3)), .dropsItsDatabases) struct ServiceIdentityTests {
    let sample = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("consignment.json").path

    @Test func bookingsTravelOverMutualTLSAndOnlyConsignmentServiceMayBookRoom() async throws {
        let system = try ShippySystem()
        let authority = try TestAuthority()
        let vessel = try system.startVessel(extra: try authority.issue("vessel-service").environment)
        var services = [vessel]
        try await cleaningUp({ await ShippySystem.stopAll(services) }) {
            let consignment = try system.startConsignment(
                vessel: vessel, extra: try authority.issue("consignment-service").environment)
            services.append(consignment)
            for service in services { try await service.waitUntilServing() }
            let ann = TestKeys.user("ann")
            let token = try await system.keys.signer().sign(ann, roles: [.user])

            // The CLI with a certificate of its own: created, its room booked over TLS.
            let cli = try authority.issue("shippy-cli")
            let shipping = ["CONSIGNMENT_SERVICE_ADDRESS": "127.0.0.1:\(consignment.port)", "SHIPPY_TOKEN": token]
            let shipped = try await runTool(
                "consignment-cli", [sample], environment: shipping.merging(cli.environment) { $1 })
            #expect(shipped.status == 0, "\(shipped.error)")
            #expect(shipped.output.hasPrefix("Created consignment "), "\(shipped.output)")
            // The same CLI in plaintext: refused, and told so in one line naming the service.
            let plain = try await runTool("consignment-cli", [sample, "--timeout", "3"], environment: shipping)
            #expect(plain.status == 69 && plain.error.contains("consignment-service"), "\(plain.error)")
            #expect(plain.error.contains("TLS_CERTIFICATE"), "\(plain.error)")

            // vessel-service's booking methods, with a valid token, by identity.
            let metadata = try await system.keys.bearer(ann)
            let request = Vessel_BookingRequest.with {
                $0.consignmentID = "direct-\(UUID())"; $0.containers = 1; $0.weight = 1; $0.attempt = 1
            }
            let reference = Vessel_BookingRef.with {
                $0.consignmentID = request.consignmentID; $0.attempt = 1
            }
            let gateway = try authority.issue("api-gateway")
            for method in ["Book", "Confirm", "Release", "Cancel"] {
                await expectStatus(.permissionDenied, "\(method) is for consignment-service only") {
                    try await vessel.withClient(as: gateway) { client in
                        let vessels = Vessel_VesselService.Client(wrapping: client)
                        switch method {
                        case "Book": _ = try await vessels.book(request, metadata: metadata)
                        case "Confirm": _ = try await vessels.confirm(reference, metadata: metadata)
                        case "Release": _ = try await vessels.release(reference, metadata: metadata)
                        default: _ = try await vessels.cancel(reference, metadata: metadata)
                        }
                    }
                }
            }
            let booked = try await vessel.withClient(as: try authority.issue("consignment-service")) { client in
                let vessels = Vessel_VesselService.Client(wrapping: client)
                let booking = try await vessels.book(request, metadata: metadata)
                return (booking, try await vessels.release(reference, metadata: metadata))
            }
            #expect(booked.0.state == .reserved && booked.1.state == .released)

            // No certificate from the authority: no call at all, whatever the method.
            let stranger = try TestAuthority(name: "Another CA").issue("consignment-service")
            for identity in [nil, stranger] as [TLSFiles?] {
                let outcome = await
                    (try? vessel.withClient(as: identity) { client in
                        var options = CallOptions.defaults
                        options.timeout = .seconds(3)
                        return try await Vessel_VesselService.Client(wrapping: client).book(
                            request, metadata: metadata, options: options)
                    })
                #expect(outcome == nil, "\(String(describing: identity))")
            }
            // Each refused handshake is counted by its reason; the log has one line for the peer this minute.
            let scrape = Scrape(try await vessel.metrics())
            for reason in ["not_tls", "refused_by_peer"] {
                let refused = scrape["tls_handshake_refusals_total{reason=\"\(reason)\"}"] ?? 0
                #expect(refused >= 1, "\(reason): \(scrape.values.filter { $0.key.hasPrefix("tls_handshake") })")
            }
            let logged = vessel.process.errorOutput.split(separator: "\n").filter {
                $0.contains("TLS handshake refused")
            }
            #expect(logged.count == 1 && logged[0].contains("peer=127.0.0.1"), "\(logged)")
            #expect(await vessel.isServing())
            #expect(await consignment.isServing())
        }
    }

    /// user-service over mutual TLS counts a login by the client address the gateway sends only when the caller's
    /// certificate names the gateway: any other program's word is not taken, even from an address that
    /// `TRUSTED_GATEWAYS` lists (over TLS the certificate, not the address, says who the gateway is).
    @Test func userServiceTakesTheClientsAddressFromTheGatewaysIdentityOnly() async throws {
        let system = try ShippySystem()
        let authority = try TestAuthority()
        let user = try await system.startUser(
            extra: try authority.issue("user-service").environment.merging([
                "TRUSTED_GATEWAYS": "127.0.0.1", "LOGIN_FREE_FAILURES": "0",
            ]) { $1 })
        try await cleaningUp({ await user.process.stop() }) {
            try await user.waitUntilServing()
            let email = "ann-\(UUID().uuidString.prefix(8))@example.com"
            let password = "correct horse battery"
            // A wrong password said to come from 192.0.2.1, then the right one said to come from 192.0.2.2.
            func guessThenLogIn(as identity: TLSFiles) async throws {
                try await user.withClient(as: identity) { client in
                    let users = User_UserService.Client(wrapping: client)
                    await expectStatus(.unauthenticated, "wrong email or password") {
                        _ = try await users.auth(
                            .with {
                                $0.email = email; $0.password = "wrong password"
                            },
                            metadata: ["shippy-client-address": "192.0.2.1"])
                    }
                    _ = try await users.auth(
                        .with {
                            $0.email = email; $0.password = password
                        },
                        metadata: ["shippy-client-address": "192.0.2.2"])
                }
            }
            let gateway = try authority.issue("api-gateway")
            _ = try await user.withClient(as: gateway) { client in
                try await User_UserService.Client(wrapping: client).create(
                    .with {
                        $0.name = "Ann"; $0.email = email; $0.password = password
                    })
            }
            // The gateway's two clients are two clients: the guess at one does not delay the other's login.
            try await guessThenLogIn(as: gateway)
            // Another program's word is not taken: both attempts are its own address's, and the login waits.
            await expectStatus(.resourceExhausted, "too many failed logins") {
                try await guessThenLogIn(as: try authority.issue("user-cli"))
            }
        }
    }
}
