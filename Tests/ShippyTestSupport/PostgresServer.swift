import Foundation
import Logging
import PostgresNIO
import ShippyPostgres
import Testing

/// Databases for tests: one fresh database per test on the harness's PostgreSQL.
package enum PostgresTestDatabase {
    /// Creates an empty database and returns its URL; it is dropped when the test ends (`.dropsItsDatabases`).
    /// - Parameter locale: the database's locale (`C`, `C.UTF-8`), UTF-8 encoded; the cluster's when `nil`.
    package static func create(locale: String? = nil) async throws -> String {
        let adminURL = try TestEnvironment.value("SHIPPY_POSTGRES_URL")
        let name = TestEnvironment.uniqueName("users").lowercased()
        var components = try #require(URLComponents(string: adminURL))
        // A database name or locale cannot be a bind parameter; both are ours: letters, digits, `_`, `.`, `-`.
        let options = locale.map { " TEMPLATE template0 ENCODING 'UTF8' LOCALE '\($0)'" } ?? ""
        try await withAdminClient(adminURL) { client in
            try await client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)\(options)"))
        }
        TestDatabases.madePostgres(name)
        components.path = "/\(name)"
        return try #require(components.string)
    }

    package static func withAdminClient<T>(_ url: String, _ body: (PostgresClient) async throws -> T) async throws -> T
    {
        // Over TLS, as the URL says (the harness's PostgreSQL takes nothing else). CREATE and DROP DATABASE wait for
        // a checkpoint, which on a loaded machine outlasts the services' 5 s statement timeout (CI once cancelled five
        // drops at once).
        var configuration = try PostgresURL.configuration(url, statementTimeout: .seconds(120))
        configuration.options.connectTimeout = .seconds(5)
        let client = PostgresClient(configuration: configuration, backgroundLogger: Logger(label: "test-admin"))
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            return try await body(client)
        }
    }
}

/// A private PostgreSQL cluster that a test starts and stops itself (the harness's stays up).
package final class PostgresServer: Sendable {
    package let port: Int
    package let directory: String
    private let bin: String

    package var url: String { "postgres://shippy@127.0.0.1:\(port)/postgres?sslmode=disable" }

    /// Creates the cluster (initdb), without starting it.
    package init(port: Int) throws {
        self.port = port
        self.bin = try TestEnvironment.value("SHIPPY_PG_BIN")
        self.directory = "/tmp/shippy-pgtest-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if getuid() == 0 {
            try FileManager.default.setAttributes([.ownerAccountName: "postgres"], ofItemAtPath: directory)
        }
        try #require(try run("initdb", ["-D", "\(directory)/data", "-U", "shippy", "--auth=trust"]), "initdb failed")
    }

    package func start() throws {
        let started = try run(
            "pg_ctl",
            [
                "-D", "\(directory)/data", "-l", "\(directory)/log", "-w", "-t", "60",
                "-o", "-c listen_addresses=127.0.0.1 -p \(port) -k \(directory)", "start",
            ])
        try #require(started, "PostgreSQL did not start; see \(directory)/log")
    }

    package func stop() {
        _ = try? run("pg_ctl", ["-D", "\(directory)/data", "-m", "immediate", "-w", "stop"])
    }

    /// Stops the cluster and removes its files.
    package func destroy() {
        stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Runs a PostgreSQL tool as the `postgres` user when we are root (PostgreSQL refuses to run as root);
    /// returns whether it succeeded.
    ///
    /// posix_spawn and waitpid rather than Foundation's `Process`: `pg_ctl start` leaves a daemon behind
    /// that inherits Foundation's descriptors, and `waitUntilExit` then never returns.
    private func run(_ tool: String, _ arguments: [String]) throws -> Bool {
        let argv =
            (getuid() == 0 ? ["/usr/sbin/runuser", "-u", "postgres", "--"] : []) + ["\(bin)/\(tool)"] + arguments
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        var pid: pid_t = 0
        let cArguments = argv.map { strdup($0) } + [nil]
        defer { cArguments.forEach { free($0) } }
        guard posix_spawn(&pid, argv[0], &actions, nil, cArguments, environ) == 0 else { return false }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        // WIFEXITED and WEXITSTATUS, which Swift does not import.
        return status & 0x7f == 0 && (status >> 8) & 0xff == 0
    }
}
