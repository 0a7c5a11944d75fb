import Foundation
import Synchronization
import Testing

/// A private nats-server with JetStream that a test starts, stops and starts again (its storage survives).
final class NATSServer: Sendable {
    let port: Int
    let storage: String
    private let process = Mutex<ChildProcess?>(nil)

    var url: String { "nats://127.0.0.1:\(port)" }

    init(port: Int) {
        self.port = port
        self.storage =
            FileManager.default.temporaryDirectory.appendingPathComponent("shippy-nats-\(UUID().uuidString)").path
    }

    func start() async throws {
        let child = try ChildProcess(
            URL(fileURLWithPath: "/usr/bin/env"),
            arguments: ["nats-server", "-a", "127.0.0.1", "-p", "\(port)", "-js", "-sd", storage])
        process.withLock { $0 = child }
        let port = self.port
        let listening = await eventually(within: .seconds(20)) { isListening(port: port) }
        try #require(listening, "nats-server did not start: \(child.errorOutput)")
    }

    func stop() async {
        let child = process.withLock { $0 }
        await child?.stop()
    }

    func destroy() async {
        await stop()
        try? FileManager.default.removeItem(atPath: storage)
    }
}
