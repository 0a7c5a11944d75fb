import Logging
import ShippyRuntime
import ShippyStorage
import ShippyTestSupport
import Synchronization
import Testing

/// Readiness after start: a dependency whose probe fails takes the process out of rotation (NOT_SERVING)
/// until it answers again.
@Suite struct ReadinessTests {
    struct Lost: Error {}

    @Test func aLostDependencyTurnsHealthNotServingUntilItAnswersAgain() async throws {
        let answering = Mutex(true)
        let probes = Mutex(0)
        let health = HealthService(services: ["shippy.Test"])
        let database = Dependency(
            name: "the test database", connect: {},
            probe: {
                probes.withLock { $0 += 1 }
                if !answering.withLock({ $0 }) { throw Lost() }
            })
        let readiness = ReadinessService(
            dependencies: [database], retry: StartupRetry(deadline: .seconds(5)), health: health,
            logger: Logger(label: "test"), probeInterval: .milliseconds(20))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await readiness.run() }
            defer { group.cancelAll() }
            #expect(await eventually(within: .seconds(10)) { health.status(of: "shippy.Test") == .serving })

            answering.withLock { $0 = false }
            #expect(await eventually(within: .seconds(10)) { health.status(of: "shippy.Test") == .notServing })
            #expect(health.status() == .notServing, "the server as a whole too")
            #expect(health.takesCalls, "calls still reach the handlers, which name the lost dependency")
            #expect(health.status(of: HealthService.liveness) == .serving, "alive: no restart for an outage")

            answering.withLock { $0 = true }
            #expect(await eventually(within: .seconds(10)) { health.status(of: "shippy.Test") == .serving })
            #expect(probes.withLock { $0 } >= 2, "one probe saw it lost, a later one saw it back")
            health.shutDown()
            #expect(!health.takesCalls)
            #expect(health.status(of: HealthService.liveness) == .notServing)
        }
    }

    /// A database that is down may let a ping hang for its driver's whole timeout: no answer within the probe
    /// interval already counts as lost.
    @Test func aProbeThatHangsCountsAsLost() async throws {
        let hanging = Mutex(false)
        let health = HealthService(services: ["shippy.Test"])
        let database = Dependency(
            name: "the test database", connect: {},
            probe: { if hanging.withLock({ $0 }) { try await Task.sleep(for: .seconds(3_600)) } })
        let readiness = ReadinessService(
            dependencies: [database], retry: StartupRetry(deadline: .seconds(5)), health: health,
            logger: Logger(label: "test"), probeInterval: .milliseconds(50))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await readiness.run() }
            defer { group.cancelAll() }
            #expect(await eventually(within: .seconds(10)) { health.status() == .serving })
            hanging.withLock { $0 = true }
            #expect(await eventually(within: .seconds(10)) { health.status() == .notServing })
        }
    }
}
