import Foundation
import ShippyDiscovery
import Synchronization
import Testing

/// Every child a test started and has not seen exit. Whatever a test leaves running (a failed expectation,
/// a `defer` that could not await) is killed when the test process exits, so no run leaks servers.
private let runningChildren = Mutex<Set<Int32>>([])
private let killChildrenAtExit: Void = {
    atexit {
        for pid in runningChildren.withLock({ $0 }) { kill(pid, SIGKILL) }
    }
}()

/// A real executable started by a test, its output in files (pipes could fill and block it),
/// ended by the test through its PID only.
package final class ChildProcess: @unchecked Sendable {
    // @unchecked: `Process` is not Sendable; this wrapper only reads it after `run()` and signals it by PID.
    package let process = Process()
    package let outputURL: URL
    package let errorURL: URL

    package init(_ executable: URL, arguments: [String] = [], environment: [String: String] = [:]) throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("shippy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        outputURL = folder.appendingPathComponent("stdout")
        errorURL = folder.appendingPathComponent("stderr")
        FileManager.default.createFile(atPath: outputURL.path, contents: nil)
        FileManager.default.createFile(atPath: errorURL.path, contents: nil)
        process.executableURL = executable
        process.arguments = arguments
        // Only what the test passes, plus PATH: the developer's own settings must not leak in. No metrics endpoint
        // unless the test asks for one: the services' fixed default ports would collide between parallel tests.
        process.environment = environment.merging(
            [
                "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "", "METRICS_PORT": "0",
                // libmongoc's shared-memory counters (for its stat tool only) are a /dev/shm file per PID, which a
                // killed process leaves behind; a later process given that PID then warns about it on stderr.
                "MONGOC_DISABLE_SHM": "1",
                // A CLI's kept login stays with its process unless the test shares one on purpose.
                "SHIPPY_SESSION_FILE": folder.appendingPathComponent("session.json").path,
            ]
        ) { own, _ in own }
        process.standardOutput = try FileHandle(forWritingTo: outputURL)
        process.standardError = try FileHandle(forWritingTo: errorURL)
        _ = killChildrenAtExit
        try process.run()
        let pid = process.processIdentifier
        runningChildren.withLock { _ = $0.insert(pid) }
    }

    package var pid: Int32 { process.processIdentifier }
    package var isRunning: Bool { process.isRunning }
    package var output: String { (try? String(contentsOf: outputURL, encoding: .utf8)) ?? "" }
    package var errorOutput: String { (try? String(contentsOf: errorURL, encoding: .utf8)) ?? "" }

    package func signal(_ signal: Int32) {
        if process.isRunning { kill(pid, signal) }
    }

    /// Waits for the process to exit and returns its status, or `nil` if it is still running after `timeout`.
    package func waitForExit(timeout: Duration = .seconds(15)) async -> Int32? {
        guard await eventually(within: timeout, { !self.process.isRunning }) else { return nil }
        runningChildren.withLock { _ = $0.remove(pid) }
        return process.terminationStatus
    }

    /// Ends the process if a test left it running (a failed expectation must not leak processes).
    package func stop() async {
        guard process.isRunning else { return }
        signal(SIGTERM)
        if await waitForExit(timeout: .seconds(10)) == nil {
            signal(SIGKILL)
            _ = await waitForExit(timeout: .seconds(5))
        }
    }
}

/// A private MongoDB-compatible server for tests that control when it appears or disappears.
package final class MongoServer: Sendable {
    package let port: Int
    package let process: ChildProcess

    package var url: String { "mongodb://127.0.0.1:\(port)" }

    /// Starts the server the harness uses (`SHIPPY_MONGOD`) on `port` with a fresh storage folder; with `tls`, it
    /// takes TLS only, from clients with a certificate of the same authorities.
    package init(port: Int, tls: TLSFiles? = nil) throws {
        let command = try TestEnvironment.value("SHIPPY_MONGOD").split(separator: " ").map(String.init)
        let storage = FileManager.default.temporaryDirectory.appendingPathComponent("shippy-mongo-\(UUID().uuidString)")
        let isMongod = command[0].hasSuffix("mongod")
        try FileManager.default.createDirectory(at: storage, withIntermediateDirectories: true)
        var arguments = Array(command.dropFirst()) + ["--port", "\(port)", isMongod ? "--dbpath" : "--storage-path"]
        arguments.append(storage.path)
        if let tls {
            arguments +=
                isMongod
                ? [
                    "--tlsMode", "requireTLS", "--tlsCertificateKeyFile", try tls.combined(in: storage.path),
                    "--tlsCAFile", tls.authorities,
                ]
                : [
                    "--tls-cert-file", tls.certificate, "--tls-key-file", tls.key, "--tls-ca-file", tls.authorities,
                    "--tls-require-client-cert",
                ]
        }
        self.port = port
        self.process = try ChildProcess(URL(fileURLWithPath: command[0]), arguments: arguments)
    }

    /// Waits until the server accepts TCP connections.
    package func waitUntilListening(timeout: Duration = .seconds(30)) async throws {
        let port = self.port
        let listening = await eventually(within: timeout) { isListening(port: port) }
        try #require(listening, "MongoDB test server did not start: \(process.errorOutput)")
    }
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
package func isListening(port: Int) -> Bool {
    let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard socket >= 0 else { return false }
    defer { close(socket) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    return withUnsafePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
        }
    }
}

/// Runs `body`, then `cleanup` (stopping the processes and servers a test started), whether `body` returned
/// or threw, and waits for it: nothing a test starts outlives it, and no cleanup runs in a detached task.
package func cleaningUp<T>(_ cleanup: () async -> Void, _ body: () async throws -> T) async throws -> T {
    let result: T
    do {
        result = try await body()
    } catch {
        await cleanup()
        throw error
    }
    await cleanup()
    return result
}

/// What one run of a command-line tool did.
package struct ToolRun: Sendable {
    package var status: Int32?
    package var output: String
    package var error: String
}

/// Runs one of Shippy's executables (a CLI) to its end, a minute at most.
package func runTool(_ tool: String, _ arguments: [String], environment: [String: String] = [:]) async throws -> ToolRun
{
    try await runCommand(try TestEnvironment.executable(tool), arguments, environment: environment)
}

/// Runs a command (`/usr/bin/curl`, say) to its end, a minute at most.
package func runCommand(
    _ executable: URL, _ arguments: [String], environment: [String: String] = [:]
) async throws -> ToolRun {
    let process = try ChildProcess(executable, arguments: arguments, environment: environment)
    let status = await process.waitForExit(timeout: .seconds(60))
    await process.stop()
    return ToolRun(status: status, output: process.output, error: process.errorOutput)
}

extension TLSFiles {
    /// The certificate and its key in one PEM file, in `folder`: the form libmongoc and mongod take.
    package func combined(in folder: String) throws -> String {
        let path = "\(folder)/\(UUID().uuidString.prefix(8))-combined.pem"
        let pem =
            try String(contentsOfFile: certificate, encoding: .utf8) + String(contentsOfFile: key, encoding: .utf8)
        try pem.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}
