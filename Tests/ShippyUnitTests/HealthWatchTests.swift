import GRPCCore
import Logging
import ShippyContracts
import ShippyDiscovery
import ShippyRuntime
import ShippyTestSupport
import Testing

/// Watch streams are bounded: each ends when its client goes away (over a real socket: the in-process transport
/// does not tell a server that its client left), and past `maximumWatchers` a Watch is refused with a word to
/// poll instead. Invariant: `watchers` counts exactly the clients still watching.
@Suite(.timeLimit(.minutes(1))) struct HealthWatchTests {
    @Test func aWatchEndsWithItsClientAndTheirNumberIsBounded() async throws {
        let health = HealthService(services: [])
        health.setServing(true)
        try await withHealthServerOnSocket(health) { port in
            let target = try ServiceAddress.target("127.0.0.1:\(port)", key: "test")
            try await withGRPCClient(transport: try ServiceTransport(main: target)) { client in
                let watches = Grpc_Health_V1_Health.Client(wrapping: client)
                let watching = Task {
                    try await withThrowingDiscardingTaskGroup { group in
                        for _ in 0..<HealthService.maximumWatchers {
                            group.addTask {
                                try await watches.watch(.init()) { response in
                                    for try await _ in response.messages {}
                                }
                            }
                        }
                    }
                }
                #expect(await eventually(within: .seconds(20)) { health.watchers == HealthService.maximumWatchers })
                await expectStatus(.resourceExhausted, "poll with Check instead") {
                    try await watches.watch(.init()) { response in
                        for try await _ in response.messages {}
                    }
                }
                let status = try await watches.check(.init()).status
                #expect(status == .serving, "Check still answers")

                watching.cancel()
                #expect(await eventually(within: .seconds(10)) { health.watchers == 0 }, "the clients went away")
                _ = await watching.result
            }
        }
    }
}
