import Foundation
import GRPCCore
import ShippyContracts
import ShippyTestSupport
import Testing

/// consignment-service's client of vessel-service as configured in production: the address by name
/// (`dns:///localhost:PORT`, through discovery), a canary vessel-service taking its configured share of the calls,
/// and the share changed through the configuration file while the service runs.
@Suite(.timeLimit(.minutes(2)), .dropsItsDatabases) struct VesselRoutingTests {
    @Test func theCanaryTakesItsShareAndFollowsTheFile() async throws {
        let system = try ShippySystem()
        let main = try system.startVessel()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("shippy-canary-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let file = folder.appendingPathComponent("consignment.json").path
        func configure(_ json: String) throws { try json.write(toFile: file, atomically: true, encoding: .utf8) }
        try configure(#"{"vessel": {"canary": {"percent": 50}}}"#)
        var services = [main]
        try await cleaningUp({
            await ShippySystem.stopAll(services)
            try? FileManager.default.removeItem(at: folder)
        }) {
            try await main.waitUntilServing()  // it seeds the fleet; the canary then finds it stored
            let canary = try system.startVessel()
            services.append(canary)
            try await canary.waitUntilServing()
            let consignment = try system.startConsignment(
                vessel: main,
                extra: [
                    "VESSEL_SERVICE_ADDRESS": "dns:///localhost:\(main.port)",
                    "VESSEL_CANARY_ADDRESS": "127.0.0.1:\(canary.port)", "CONFIG_FILE": file,
                ])
            services.append(consignment)
            try await consignment.waitUntilServing()
            let metadata = try await system.keys.bearer(TestKeys.user("ann"))
            func ship(_ count: Int) async throws {
                for _ in 0..<count {
                    _ = try await consignment.withClient { client in
                        try await Consignment_ShippingService.Client(wrapping: client).createConsignment(
                            sampleConsignment, metadata: metadata)
                    }
                }
            }
            /// Book and Confirm calls a vessel-service answered, from its own metrics.
            func bookings(_ vessel: ServiceProcess) async throws -> Int {
                let scrape = Scrape(try await vessel.metrics())
                return Int(
                    scrape.values.filter { series, _ in
                        series.hasPrefix("grpc_server_handled_total{")
                            && (series.contains(#"grpc_method="Book""#) || series.contains(#"grpc_method="Confirm""#))
                    }.values.reduce(0, +))
            }

            // Each consignment is a Book and a Confirm: 8 calls, one in two to the canary.
            try await ship(4)
            let (mainCalls, canaryCalls) = (try await bookings(main), try await bookings(canary))
            print("canary at 50 %: main \(mainCalls), canary \(canaryCalls) of 8 calls")
            #expect(mainCalls == 4 && canaryCalls == 4)

            try configure(#"{"vessel": {"canary": {"percent": 0}}}"#)
            #expect(
                await eventually(within: .seconds(3)) {
                    consignment.process.errorOutput.contains("key=vessel.canary.percent to=0")
                }, "the change is applied and logged:\n\(consignment.process.errorOutput)")
            try await ship(2)
            print("canary at 0 %: main \(try await bookings(main)), canary \(try await bookings(canary))")
            #expect(try await bookings(main) == 8)
            #expect(try await bookings(canary) == 4, "no call went to the canary at 0 %")
        }
    }
}
