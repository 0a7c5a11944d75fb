import GRPCCore
import GRPCInProcessTransport
import Testing

/// Expects `call` to fail with the gRPC status `code` and a message containing `message`.
func expectStatus(
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

/// Serves `service` behind `interceptor` over grpc-swift's in-process transport and runs `body` with a client.
func withInProcessServer<T: Sendable>(
    _ service: any RegistrableRPCService,
    interceptor: any ServerInterceptor,
    _ body: (GRPCClient<InProcessTransport.Client>) async throws -> T
) async throws -> T {
    let transport = InProcessTransport()
    return try await withGRPCServer(transport: transport.server, services: [service], interceptors: [interceptor]) {
        _ in
        try await withGRPCClient(transport: transport.client) { try await body($0) }
    }
}
