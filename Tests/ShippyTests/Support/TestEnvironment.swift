import Foundation
import Testing

/// What `scripts/test.sh` (`make test`) provides: the servers it started and where the executables are.
/// A missing value fails the test with instructions; no test skips itself because a server is missing.
enum TestEnvironment {
    static func value(_ key: String) throws -> String {
        try #require(
            ProcessInfo.processInfo.environment[key],
            "\(key) is not set: run the tests with `make test`, which starts the servers they need"
        )
    }

    /// The shared MongoDB-compatible server; each test uses a database of its own on it.
    static func mongoURL() throws -> String { try value("SHIPPY_MONGO_URL") }

    /// The folder holding the built executables (`swift build --show-bin-path`).
    static func executable(_ name: String) throws -> URL {
        let url = URL(fileURLWithPath: try value("SHIPPY_BIN_DIR")).appendingPathComponent(name)
        try #require(
            FileManager.default.isExecutableFile(atPath: url.path), "\(url.path) is not built: run `make test`")
        return url
    }

    /// A database name no other test uses.
    static func uniqueDatabase(_ prefix: String = "test") -> String {
        "\(prefix)_\(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12))"
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
func freePort() throws -> Int {
    let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    try #require(socket >= 0)
    defer { close(socket) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
            bind(socket, generic, length) == 0 && getsockname(socket, generic, &length) == 0
        }
    }
    try #require(bound)
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Polls `condition` every 50 ms until it holds or `timeout` passes; returns whether it held.
func eventually(
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
