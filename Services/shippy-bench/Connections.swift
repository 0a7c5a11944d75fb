import GRPCCore
import ShippyCLI
import ShippyConfiguration
import ShippyDiscovery

typealias Client = GRPCClient<ServiceTransport>

/// Several HTTP/2 connections to one server; worker `n` uses connection `n % count`, as a load balancer would
/// spread callers.
struct Connections: Sendable {
    let clients: [Client]

    func client(_ worker: Int) -> Client { clients[worker % clients.count] }
}

/// Opens `count` connections to each address and runs `body` while they live; closes them after.
func withConnections<Result: Sendable>(
    to addresses: [String: String], count: Int, _ body: @Sendable ([String: Connections]) async throws -> Result
) async throws -> Result {
    var opened: [String: Connections] = [:]
    let security = try CLISettings.security()
    for (name, address) in addresses {
        let target = try ServiceAddress.target(address, key: "--\(name)")
        opened[name] = Connections(
            clients: try (0..<count).map { _ in
                Client(transport: try ServiceTransport(main: target, security: security))
            })
    }
    let all = opened.values.flatMap(\.clients)
    let connections = opened
    return try await withThrowingTaskGroup(of: Void.self) { group in
        for client in all { group.addTask { try await client.runConnections() } }
        defer { for client in all { client.beginGracefulShutdown() } }
        return try await body(connections)
    }
}

/// Bytes as they are, for the bare greeter: `helloworld.HelloRequest { name: "world" }` needs no generated code.
struct RawBytes: MessageSerializer, MessageDeserializer {
    func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes { Bytes(message) }
    func deserialize<Bytes: GRPCContiguousBytes>(_ bytes: Bytes) throws -> [UInt8] {
        bytes.withUnsafeBytes { Array($0) }
    }
}

extension Client {
    /// `helloworld.Greeter/SayHello` with `name: "world"` (field 1, length 5).
    func sayHello(options: CallOptions) async throws {
        let hello: [UInt8] = [0x0A, 0x05] + Array("world".utf8)
        _ = try await unary(
            request: ClientRequest(message: hello),
            descriptor: MethodDescriptor(fullyQualifiedService: "helloworld.Greeter", method: "SayHello"),
            serializer: RawBytes(), deserializer: RawBytes(), options: options
        ) { try $0.message }
    }
}
