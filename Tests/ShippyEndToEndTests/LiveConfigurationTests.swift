import Foundation
import GRPCCore
import ShippyContracts
import ShippyTestSupport
import Testing

/// The configuration file of a running consignment-service process: the log level and the vessel-service timeout
/// change within 2 s without a restart, and a bad value is logged while the previous one stays.
@Suite(.timeLimit(.minutes(2)), .dropsItsDatabases) struct LiveConfigurationTests {
    @Test func logLevelAndVesselTimeoutFollowTheFileOfARunningService() async throws {
        let keys = try TestKeys()
        let vessel = try SilentListener()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("shippy-live-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let file = folder.appendingPathComponent("consignment.json").path
        func configure(_ json: String) throws { try json.write(toFile: file, atomically: true, encoding: .utf8) }
        try configure(#"{"log": {"level": "info"}, "vessel": {"timeout": 30}}"#)

        let service = try ServiceProcess.start(
            "consignment-service",
            environment: [
                "MONGO_URL": try TestEnvironment.mongoURL(),
                "MONGO_DATABASE": TestEnvironment.uniqueDatabase("live"),
                "JWT_PUBLIC_KEY_FILE": keys.publicKeyFile,
                "VESSEL_SERVICE_ADDRESS": "127.0.0.1:\(vessel.port)",
                "CONFIG_FILE": file,
            ])
        try await cleaningUp({
            await service.process.stop()
            try? FileManager.default.removeItem(at: folder)
        }) {
            try await service.waitUntilServing()
            let metadata = try await keys.bearer(TestKeys.user("ann"))
            /// Ships once with the caller's deadline; the status code (nil for success). Which of the service's
            /// vessel timeout and the caller's deadline ended the call shows in the code, not in a clock.
            func ship(deadline: Duration) async throws -> RPCError.Code? {
                do {
                    var options = CallOptions.defaults
                    options.timeout = deadline
                    _ = try await service.withClient { client in
                        try await Consignment_ShippingService.Client(wrapping: client).createConsignment(
                            sampleConsignment, metadata: metadata, options: options)
                    }
                    return nil
                } catch let error as RPCError {
                    return error.code
                }
            }
            func log() -> String { service.process.errorOutput }
            let callLine = "method=consignment.ShippingService/CreateConsignment"

            // At first the service waits 30 s for the silent vessel-service: the caller's 1.5 s pass first.
            #expect(try await ship(deadline: .seconds(1.5)) == .deadlineExceeded)
            #expect(!log().contains(callLine), "no debug lines at info")

            try configure(#"{"log": {"level": "debug"}, "vessel": {"timeout": 0.3}}"#)
            #expect(
                await eventually(within: .seconds(2)) {
                    log().contains("from=30 key=vessel.timeout to=0.3") && log().contains("key=log.level to=debug")
                }, "both changes are applied and logged within 2 s:\n\(log())")
            let shortened = try await ship(deadline: .seconds(4.5))
            #expect(
                shortened == .unavailable,
                "the service's own 0.3 s vessel timeout ends the call, not the 4.5 s deadline")
            #expect(await eventually(within: .seconds(1)) { log().contains(callLine) }, "debug lines now appear")

            try configure(#"{"log": {"level": "loud"}, "vessel": {"timeout": "soon"}}"#)
            #expect(
                await eventually(within: .seconds(2)) {
                    log().contains("\"loud\" is not one of") && log().contains("\"soon\" is not a number of seconds")
                }, "the bad values are logged")
            let calls = log().components(separatedBy: callLine).count
            // 4.5 s: below the default 5 s, with room for a MongoDB-compatible server slowed by tests beside it.
            let kept = try await ship(deadline: .seconds(4.5))
            #expect(
                kept == .unavailable, "the 0.3 s timeout stays (30 s or the default 5 s would let the deadline end it)")
            #expect(await eventually(within: .seconds(1)) { log().components(separatedBy: callLine).count > calls })
            #expect(service.process.isRunning, "never restarted")
        }
    }
}
