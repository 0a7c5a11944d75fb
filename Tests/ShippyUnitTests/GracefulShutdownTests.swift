import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import ShippyContracts
import ShippyDomain
import ShippyRuntime
import ShippyStorage
import ShippyTestSupport
import Synchronization
import Testing

@testable import VesselService

/// The shared gRPC server service on a real socket: a graceful shutdown lets the call in flight finish.
@Suite struct GracefulShutdownTests {
    @Test func callInFlightCompletesAfterShutdownBegins() async throws {
        let repository = GatedVesselRepository()
        let app = VesselServiceApp.build(
            configuration: ServerConfiguration(port: 0),
            repository: repository,
            verifier: await VesselHandlerTests.signer().verifier,
            dependencies: [],
            logger: Logger(label: "test")
        )
        let group = ServiceRunner.makeGroup(app.services, shutdownGrace: .seconds(10), logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let port = try #require(try await app.server.listeningAddress?.ipv4).port
            #expect(await eventually(within: .seconds(5)) { app.health.status() == .serving })

            let call = Task {
                try await withGRPCClient(
                    transport: .http2NIOPosix(
                        target: .ipv4(host: "127.0.0.1", port: port), transportSecurity: .plaintext)
                ) { client in
                    try await Vessel_VesselService.Client(wrapping: client).findAvailable(.with { $0.capacity = 1 })
                }
            }
            #expect(await eventually(within: .seconds(5)) { repository.callsWaiting == 1 })

            await group.triggerGracefulShutdown()
            #expect(await eventually(within: .seconds(5)) { app.health.status() == .notServing })
            repository.release()

            let response = try await call.value
            #expect(response.vessel.id == "gated")
            try await tasks.waitForAll()
        }
    }
}

/// A repository whose `findAvailable` waits until the test releases it: a call held in flight.
final class GatedVesselRepository: PartialVesselRepositoryFake {
    private let state = Mutex<(waiting: Int, released: Bool)>((0, false))

    var callsWaiting: Int { state.withLock { $0.waiting } }

    func release() { state.withLock { $0.released = true } }

    func findAvailable(_ specification: VesselSpecification) async throws(ShippyError) -> Vessel? {
        state.withLock { $0.waiting += 1 }
        while !state.withLock({ $0.released }) { try? await Task.sleep(for: .milliseconds(10)) }
        return Vessel(id: "gated", name: "Gated", capacity: 1, maxWeight: 1)
    }

    func create(_ vessel: Vessel) async throws(ShippyError) {}
    func seedIfEmpty(_ fleet: [Vessel]) async throws(ShippyError) -> Int { 0 }
}
