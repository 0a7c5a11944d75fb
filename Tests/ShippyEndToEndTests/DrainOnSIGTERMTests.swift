import Foundation
import GRPCCore
import ShippyContracts
import ShippyDomain
import ShippyIdentity
import ShippyTestSupport
import Testing

/// SIGTERM lets the calls in flight finish, in every service that takes calls (vessel-service's own case is in
/// VesselServiceBlackBoxTests): the executable, a call held in flight (seen in its `grpc_server_in_flight`),
/// SIGTERM, then the call's real answer and exit status 0.
@Suite(.timeLimit(.minutes(3)), .dropsItsDatabases) struct DrainOnSIGTERMTests {
    let system: ShippySystem

    init() throws { system = try ShippySystem() }

    /// Room enough for the call in flight to finish on a loaded machine: the test is that it does, not how fast.
    static let grace = ["SHUTDOWN_GRACE": "120"]

    /// Waits until `service` reports `method` of `grpcService` in flight; fails the test with its figures if not.
    func waitUntilInFlight(_ service: ServiceProcess, _ grpcService: String, _ method: String) async {
        let series = #"grpc_server_in_flight{grpc_service="\#(grpcService)",grpc_method="\#(method)"}"#
        var seen = ""
        let inFlight = await eventually(within: .seconds(20)) {
            seen =
                (try? await service.metrics())?.split(separator: "\n").filter { $0.contains("in_flight") }
                .joined(separator: "\n") ?? ""
            return seen.split(separator: "\n").contains { $0.hasPrefix(series) && !$0.hasSuffix(" 0") }
        }
        #expect(inFlight, "\(method) never in flight; in_flight series:\n\(seen)\nlog:\n\(service.process.errorOutput)")
    }

    /// A booking waiting on a vessel-service that is stopped (SIGSTOP): consignment-service, told to stop,
    /// finishes it once vessel-service goes on.
    @Test func consignmentServiceFinishesTheBookingInFlight() async throws {
        let vessel = try system.startVessel()
        let consignment = try system.startConsignment(
            vessel: vessel, extra: ["VESSEL_TIMEOUT": "60"].merging(Self.grace) { $1 })
        try await cleaningUp({
            vessel.process.signal(SIGCONT)
            await ShippySystem.stopAll([consignment, vessel])
        }) {
            for service in [vessel, consignment] { try await service.waitUntilServing() }
            let owner = TestKeys.user("Drain")
            let token = try await system.keys.bearer(owner)
            vessel.process.signal(SIGSTOP)
            let booking = Task {
                try await consignment.withClient { client in
                    try await Consignment_ShippingService.Client(wrapping: client).createConsignment(
                        .with {
                            $0.description_p = "in flight at SIGTERM"; $0.weight = 1_000
                            $0.containers = [
                                .with {
                                    $0.customerID = "c1"; $0.origin = "Leeds"
                                }
                            ]
                        }, metadata: token)
                }
            }
            await waitUntilInFlight(consignment, "consignment.ShippingService", "CreateConsignment")
            consignment.process.signal(SIGTERM)
            vessel.process.signal(SIGCONT)
            let created = try await booking.value
            #expect(created.created && !created.consignment.vesselID.isEmpty, "booked on a vessel")
            #expect(
                await consignment.process.waitForExit(timeout: .seconds(150)) == 0, "\(consignment.process.errorOutput)"
            )
        }
    }

    /// The gateway, then user-service, each told to stop while a call waits on bcrypt (at a cost that takes a
    /// while; one user-service for both, so that the test loads the machine once): an HTTP sign-up through the
    /// gateway is answered 201, a log-in at user-service is answered (refused, as its address is unknown).
    @Test func theGatewayAndUserServiceAnswerTheCallsInFlight() async throws {
        let user = try await system.startUser(extra: ["BCRYPT_COST": "13"].merging(Self.grace) { $1 })
        let gateway = try ServiceProcess.start(
            "api-gateway",
            environment: [
                "USER_SERVICE_ADDRESS": "127.0.0.1:\(user.port)",
                // Not called here: a sign-up needs user-service only.
                "CONSIGNMENT_SERVICE_ADDRESS": "127.0.0.1:1", "VESSEL_SERVICE_ADDRESS": "127.0.0.1:1",
                "REQUEST_TIMEOUT": "120",
            ].merging(Self.grace) { $1 })
        try await cleaningUp({ await ShippySystem.stopAll([gateway, user]) }) {
            try await user.waitUntilServing()
            let ready = await eventually(within: .seconds(30)) {
                (try? await http("GET", "http://127.0.0.1:\(gateway.port)/healthz"))?.status == 200
            }
            try #require(ready, "\(gateway.process.errorOutput)")
            let signUp = Task {
                try await http(
                    "POST", "http://127.0.0.1:\(gateway.port)/v1/users",
                    json: ["name": "Drain", "email": "drain@example.com", "password": "a password"])
            }
            await waitUntilInFlight(user, "user.UserService", "Create")
            gateway.process.signal(SIGTERM)
            #expect(try await signUp.value.status == 201, "the answer, not a dropped connection")
            #expect(await gateway.process.waitForExit(timeout: .seconds(150)) == 0, "\(gateway.process.errorOutput)")

            // An unknown address is checked against the decoy hash, at the same cost.
            let login = Task {
                try await user.withClient { client in
                    try await User_UserService.Client(wrapping: client).auth(
                        .with {
                            $0.email = "nobody@example.com"; $0.password = "a password"
                        })
                }
            }
            await waitUntilInFlight(user, "user.UserService", "Auth")
            user.process.signal(SIGTERM)
            await #expect {
                _ = try await login.value
            } throws: { error in
                (error as? RPCError)?.code == .unauthenticated  // the answer, not an unavailable server
            }
            #expect(await user.process.waitForExit(timeout: .seconds(150)) == 0, "\(user.process.errorOutput)")
        }
    }
}
