import Foundation
import Synchronization
import Testing

/// A private nats-server with JetStream that a test starts, stops and starts again (its storage survives).
package final class NATSServer: Sendable {
    package let port: Int
    package let storage: String
    private let process = Mutex<ChildProcess?>(nil)

    package var url: String { "nats://127.0.0.1:\(port)" }

    package init(port: Int) {
        self.port = port
        self.storage =
            FileManager.default.temporaryDirectory.appendingPathComponent("shippy-nats-\(UUID().uuidString)").path
    }

    package func start() async throws {
        let child = try ChildProcess(
            URL(fileURLWithPath: "/usr/bin/env"),
            arguments: ["nats-server", "-a", "127.0.0.1", "-p", "\(port)", "-js", "-sd", storage])
        process.withLock { $0 = child }
        let port = self.port
        let listening = await eventually(within: .seconds(20)) { isListening(port: port) }
        try #require(listening, "nats-server did not start: \(child.errorOutput)")
    }

    package func stop() async {
        let child = process.withLock { $0 }
        await child?.stop()
    }

    package func destroy() async {
        await stop()
        try? FileManager.default.removeItem(atPath: storage)
    }
}
