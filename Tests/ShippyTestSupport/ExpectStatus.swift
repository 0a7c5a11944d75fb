import GRPCCore
import GRPCInProcessTransport
import Logging
import ServiceLifecycle
import ShippyContracts
import ShippyRuntime
import Testing

/// Expects `call` to fail with the gRPC status `code` and a message containing `message`.
package func expectStatus(
    _ code: RPCError.Code,
    _ message: String,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ call: () async throws -> Void
) async {
    await #expect(sourceLocation: sourceLocation) {
        try await call()
    } throws: { error in
        guard let error = error as? RPCError else { return false }
        return error.code == code && error.message.contains(message)
    }
}

/// What the in-process runner needs of a service's wiring: its lifecycle services, in start order.
package protocol RunnableApp: Sendable {
    var services: [(name: String, service: any Service)] { get }
}

/// Builds a service with its production wiring (the `build` that `main` uses, with an in-process transport
/// instead of a socket), runs its services as `main` does, waits until it reports SERVING, and runs `body` with
/// the app and a client; then shuts the services down gracefully, whatever `body` did.
package func withRunningApp<App: RunnableApp, T: Sendable>(
    _ build: (ServerConfiguration) async throws -> App,
    _ body: (App, GRPCClient<InProcessTransport.Client>) async throws -> T
) async throws -> T {
    let transport = InProcessTransport()
    var configuration = ServerConfiguration(port: 0, startupTimeout: .seconds(10))
    configuration.inProcess = transport.server
    let app = try await build(configuration)
    let group = ServiceRunner.makeGroup(app.services, shutdownGrace: .seconds(5), logger: Logger(label: "test"))
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        let result = try await cleaningUp({ await group.triggerGracefulShutdown() }) {
            try await withGRPCClient(transport: transport.client) { client in
                let health = Grpc_Health_V1_Health.Client(wrapping: client)
                let serving = await eventually(within: .seconds(10)) {
                    (try? await health.check(.init()).status) == .serving
                }
                try #require(serving, "the service never reported SERVING")
                return try await body(app, client)
            }
        }
        try await tasks.waitForAll()
        return result
    }
}
