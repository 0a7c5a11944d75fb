import Foundation
import Logging
import ShippyMongo
import Synchronization
import Testing

/// What `scripts/test.sh` (`make test`) provides: the servers it started and where the executables are.
/// A missing value fails the test with instructions; no test skips itself because a server is missing.
package enum TestEnvironment {
    package static func value(_ key: String) throws -> String {
        try #require(
            ProcessInfo.processInfo.environment[key],
            "\(key) is not set: run the tests with `make test`, which starts the servers they need"
        )
    }

    /// The shared MongoDB-compatible server; each test uses a database of its own on it.
    package static func mongoURL() throws -> String { try value("SHIPPY_MONGO_URL") }

    /// The folder holding the built executables (`swift build --show-bin-path`).
    package static func executable(_ name: String) throws -> URL {
        let url = URL(fileURLWithPath: try value("SHIPPY_BIN_DIR")).appendingPathComponent(name)
        try #require(
            FileManager.default.isExecutableFile(atPath: url.path), "\(url.path) is not built: run `make test`")
        return url
    }

    /// A MongoDB database name no other test uses, dropped when the test ends (`.dropsItsDatabases`).
    package static func uniqueDatabase(_ prefix: String = "test") -> String {
        let name = uniqueName(prefix)
        TestDatabases.madeMongo(name)
        return name
    }

    static func uniqueName(_ prefix: String) -> String {
        "\(prefix)_\(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12))"
    }
}

/// Runs `body` with a MongoDB client of the test's own on the harness's server (or the one at `url`), shut down
/// afterwards.
package func withMongoClient<T>(
    url: String? = nil, database: String, threads: Int, _ body: (MongoClient) async throws -> T
) async throws -> T {
    let client = try MongoClient(
        url: try url ?? TestEnvironment.mongoURL(), database: database, threads: threads, logger: Logger(label: "test"))
    return try await cleaningUp({ await client.shutdown() }) { try await body(client) }
}

private let nextPort = Mutex(Int.random(in: 20_000...30_000))

/// A TCP port on 127.0.0.1 that was free a moment ago.
package func freePort() throws -> Int {
    // Below the kernel's ephemeral range (32768–60999), from which every outgoing connection takes its local port:
    // a port the kernel hands out there could be taken by such a connection before the service binds it (seen in
    // CI: "Address already in use"). One after another from a random start, so that the tests running in parallel
    // in this process never pick the same one.
    for _ in 0..<200 {
        let port = nextPort.withLock { port in
            defer { port = port >= 32_000 ? 20_000 : port + 1 }
            return port
        }
        if let (socket, _) = socketBound(to: port) {
            close(socket)
            return port
        }
    }
    let (socket, port) = try boundSocket()
    close(socket)
    return port
}

/// A socket bound to `port` of 127.0.0.1 (0: one the kernel picks), and the port; nil when it is taken.
private func socketBound(to port: Int) -> (socket: Int32, port: Int)? {
    let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard socket >= 0 else { return nil }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
            bind(socket, generic, length) == 0 && getsockname(socket, generic, &length) == 0
        }
    }
    if !bound { close(socket) }
    return bound ? (socket, Int(UInt16(bigEndian: address.sin_port))) : nil
}

/// A socket bound to a free port of 127.0.0.1, and that port.
private func boundSocket() throws -> (socket: Int32, port: Int) {
    try #require(socketBound(to: 0), "no free port on 127.0.0.1")
}

/// A peer that stops answering: connections to its port are completed by the kernel, and then nothing is
/// ever read or written (a hung server, as seen from its clients).
package final class SilentListener {
    package let port: Int
    private let socket: Int32

    package init() throws {
        (socket, port) = try boundSocket()
        try #require(listen(socket, 16) == 0)
    }

    deinit { close(socket) }
}

/// Polls `condition` every 50 ms until it holds or `timeout` passes; returns whether it held.
package func eventually(
    within timeout: Duration,
    _ condition: () async throws -> Bool
) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return try await condition()
}
