import GRPCCore
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
