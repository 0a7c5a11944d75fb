import Foundation
import ShippyDomain
import ShippyIdentity
import ShippyTestSupport
import Testing

/// The gateway's live stream (`GET /v1/consignment-events`), read with curl as a browser tab would, in front of the
/// real services and the harness's NATS: each change reaches its owner's open streams and no one else's, a user
/// holds at most a few, a closed tab frees its place, and a stream ends when its token expires.
@Suite(.timeLimit(.minutes(3)), .dropsItsDatabases) struct LiveEventsTests {
    let system: ShippySystem

    init() throws { system = try ShippySystem() }

    @Test func eachOwnerSeesTheirChangesLiveInAFewStreamsThatEndWithTheToken() async throws {
        let vessel = try system.startVessel()
        let user = try await system.startUser(extra: ["BCRYPT_COST": "4"])
        let consignment = try system.startConsignment(vessel: vessel)
        var services = [vessel, user, consignment]
        let tabs = Tabs()
        try await cleaningUp({
            await tabs.closeAll()
            await ShippySystem.stopAll(services)
        }) {
            for service in services { try await service.waitUntilServing() }
            let gateway = try ServiceProcess.start(
                "api-gateway",
                environment: [
                    "USER_SERVICE_ADDRESS": "127.0.0.1:\(user.port)",
                    "CONSIGNMENT_SERVICE_ADDRESS": "127.0.0.1:\(consignment.port)",
                    "VESSEL_SERVICE_ADDRESS": "127.0.0.1:\(vessel.port)", "LIVE_STREAMS_PER_USER": "2",
                ].merging(try ShippySystem.harnessNATS(unless: [:])) { $1 })
            services.append(gateway)
            let base = "http://127.0.0.1:\(gateway.port)"
            let ready = await eventually(within: .seconds(30)) {
                (try? await http("GET", "\(base)/readyz"))?.status == 200
            }
            try #require(ready, "the gateway never became ready: \(gateway.process.errorOutput)")
            let events = "\(base)/v1/consignment-events"

            func signUp(_ name: String) async throws -> (id: String, token: String) {
                let email = "\(name)-\(UUID().uuidString.prefix(8))@example.com"
                let credentials = ["email": email, "password": "correct horse battery"]
                _ = try await http("POST", "\(base)/v1/users", json: credentials.merging(["name": name]) { $1 })
                let token = try #require(
                    try await http("POST", "\(base)/v1/sessions", json: credentials).json["token"] as? String)
                let me = try await http("GET", "\(base)/v1/users/me", headers: ["Authorization": "Bearer \(token)"])
                return (try #require(me.json["id"] as? String), token)
            }
            let ann = try await signUp("Ann")
            let bob = try await signUp("Bob")
            let annTab = try tabs.open(events, token: ann.token)
            let bobTab = try tabs.open(events, token: bob.token)
            let opened = await eventually(within: .seconds(15)) {
                annTab.output.hasPrefix("event: open\n") && bobTab.output.hasPrefix("event: open\n")
            }
            try #require(opened, "ann: \(annTab.output) \(annTab.errorOutput) bob: \(bobTab.output)")

            // Ann ships and cancels through the API: her tab is told each change as it happens, Bob's nothing.
            let annBearer = ["Authorization": "Bearer \(ann.token)"]
            let shipped = try await http(
                "POST", "\(base)/v1/consignments", headers: annBearer,
                json: [
                    "description": "Live", "weight": 1_000,
                    "containers": [["customer_id": "c1", "user_id": "u", "origin": "Derby"]],
                ])
            let id = try #require(shipped.json["id"] as? String, "\(shipped)")
            let vesselID = try #require(shipped.json["vessel_id"] as? String)
            let booked =
                "event: consignment.booked\ndata: {\"cancelled_by\":\"\",\"forced\":false,\"id\":\"\(id)\","
                + "\"status\":\"booked\",\"vessel_id\":\"\(vesselID)\"}\n\n"
            #expect(await eventually(within: .seconds(15)) { annTab.output.contains(booked) }, "\(annTab.output)")
            _ = try await http("POST", "\(base)/v1/consignments/\(id)/cancel", headers: annBearer)
            let cancelled =
                "event: consignment.cancelled\ndata: {\"cancelled_by\":\"\(ann.id)\",\"forced\":false,\"id\":\"\(id)\","
                + "\"status\":\"cancelled\",\"vessel_id\":\"\(vesselID)\"}\n\n"
            #expect(await eventually(within: .seconds(15)) { annTab.output.contains(cancelled) }, "\(annTab.output)")
            #expect(!bobTab.output.contains(id), "\(bobTab.output)")
            #expect(!annTab.output.contains("@example.com"), "a stream never carries an address")

            // At most two streams per user here: a third is a 429 that says what to do; Bob's are his own.
            let second = try tabs.open(events, token: ann.token)
            #expect(await eventually(within: .seconds(15)) { second.output.hasPrefix("event: open\n") })
            let refused = try await runCommand(
                URL(fileURLWithPath: "/usr/bin/curl"),
                ["-s", "--max-time", "5", "-H", "Authorization: Bearer \(ann.token)", events])
            #expect(refused.output.contains("\"status\":429") && refused.output.contains("close a tab"), "\(refused)")
            #expect(try await status(of: events, token: bob.token) == 200)
            // Closing a tab frees its place once the gateway's next write (a keep-alive, every 15 s) finds it gone.
            await second.stop()
            let freed = await eventually(within: .seconds(40)) {
                (try? await status(of: events, token: ann.token)) == 200
            }
            #expect(freed, "a closed stream still counts against its user")

            // A stream ends with an `expired` event when its token does (Cy's: Ann's places are held by the probes
            // until the next keep-alive).
            let cy = try await signUp("Cy")
            let shortLived = await TokenSigner(
                privateKey: system.keys.privateKey, issuer: "shippy-user-service", audience: "shippy",
                lifetime: .seconds(3))
            let token = try await shortLived.sign(
                User(id: cy.id, name: "Cy", company: "", email: "cy@example.com"), roles: [.user])
            let expiring = try tabs.open(events, token: token)
            let ended = await expiring.waitForExit(timeout: .seconds(15))
            #expect(ended == 0, "the stream did not end with its token: \(expiring.output)")
            #expect(expiring.output.hasPrefix("event: open\n"))
            #expect(
                expiring.output.hasSuffix("event: expired\ndata: {\"detail\":\"the token expired; reconnect\"}\n\n"))
        }
    }

    /// The status of a stream's answer: curl gives up after two seconds, having read its head.
    func status(of url: String, token: String) async throws -> Int {
        let run = try await runCommand(
            URL(fileURLWithPath: "/usr/bin/curl"),
            [
                "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "2", "-H",
                "Authorization: Bearer \(token)", url,
            ])
        return Int(run.output) ?? 0
    }

    /// The open streams of a test, each a curl that prints what it reads as it comes.
    final class Tabs: @unchecked Sendable {
        private var open: [ChildProcess] = []

        func open(_ url: String, token: String) throws -> ChildProcess {
            let tab = try ChildProcess(
                URL(fileURLWithPath: "/usr/bin/curl"),
                arguments: ["-sN", "--max-time", "120", "-H", "Authorization: Bearer \(token)", url])
            open.append(tab)
            return tab
        }

        func closeAll() async {
            for tab in open { await tab.stop() }
        }
    }
}
