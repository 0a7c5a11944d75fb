import Foundation
import Logging
import ServiceLifecycle
import ShippyConfiguration
import ShippyTelemetry
import Synchronization

/// Runs a process's services as one `ServiceGroup` until SIGTERM or SIGINT.
public enum ServiceRunner {
    /// Starts `services` in order and, on a signal, shuts them down in reverse order: the gRPC server
    /// (listed last) drains its calls first, then the dependencies close. Calls still running after
    /// `shutdownGrace` are cancelled. Returns normally after a graceful shutdown (exit 0).
    /// - Throws: the first error a service fails with (a dependency that never came up, a port in use).
    public static func run(
        _ services: [(name: String, service: any Service)],
        shutdownGrace: Duration,
        logger: Logger
    ) async throws {
        do {
            try await makeGroup(services, shutdownGrace: shutdownGrace, logger: logger).run()
            logger.info("stopped")
        } catch {
            logger.error("stopped with an error", metadata: ["error": "\(error)"])
            throw error
        }
    }

    /// The body of every service's `serve` command: reads the settings (flags, environment, the
    /// configuration file), sets up logging, builds the services with the process's logger, and runs them
    /// after the file watch. After a graceful shutdown it ends the process with status 0; when a service fails (a
    /// port in use, a dependency that never came up), with the error as ArgumentParser prints it, and status 1.
    /// - Throws: `ConfigurationError` for a bad setting (one line, exit 1).
    public static func serve<Identity: ServiceIdentity>(
        _ identity: Identity.Type,
        flags: SettingFlags
    ) async throws -> Never {
        LoggingSetup.install()
        let logger = Logger(label: Identity.name)
        let settings = try await Settings.load(arguments: flags.values, logger: ConfigurationFileLog.logger(logger))
        var server = try ServerConfiguration(
            settings, defaultPort: Identity.defaultPort, defaultMetricsPort: Identity.defaultMetricsPort)
        LoggingSetup.configure(format: server.logFormat, level: server.logLevel)
        // Before anything makes a metric; the trace exporter starts before the services and stops after them, so
        // that the spans of the shutdown go out too.
        let tracing: TraceExporter?
        do {
            tracing = try Telemetry.bootstrap(serviceName: Identity.name, logger: logger).map {
                TraceExporter($0, logger: logger)
            }
        } catch {
            throw ConfigurationError(key: "OTEL_*", problem: "\(error)")
        }
        let metrics = MetricsEndpoint(host: server.host, port: server.metricsPort, logger: logger)
        server.certificates = try server.tls.map { try CertificateRotation(files: $0, logger: logger) }
        let certificates: [(name: String, service: any Service)] =
            server.certificates.map { [("certificates", $0)] } ?? []
        let services =
            settings.services(logger: logger) + [("metrics", metrics)] + certificates
            + (try await Identity.services(settings, server: server, logger: logger))
        // Once every setting has been read: a bad one is the only line a failed start prints.
        if server.certificates == nil {
            logger.warning("plaintext (PLAINTEXT=true): calls and tokens travel unencrypted")
        }
        var status: Int32 = 0
        do {
            try await run(services, shutdownGrace: server.shutdownGrace, logger: logger)
        } catch {
            // What ArgumentParser would print and return for it, but ending through `end`.
            FileHandle.standardError.write(Data((ServeCommand<Identity>.fullMessage(for: error) + "\n").utf8))
            status = ServeCommand<Identity>.exitCode(for: error).rawValue
        }
        await tracing?.stop(within: TraceExporter.flushLimit)
        // Every service has stopped and the exporter has flushed (or given up): exit now, with the services still
        // held. Releasing them (which Swift may do right after their last use, before the end of the scope) would
        // destroy the MongoDB client, and libmongoc's pool teardown sends endSessions and joins its monitor thread,
        // which can sit for half a minute on a server that is gone (a stopped compose container): the engine then
        // kills the process (137) although its shutdown was complete. What is left is memory the OS takes back.
        withExtendedLifetime(services) { end(status: status) }
    }

    /// Ends the process once its output is flushed, without the exit handlers of the C libraries. libmongoc's
    /// monitor threads (its pool is never destroyed, above) and the NATS C client's own threads may be inside
    /// OpenSSL at this instant, and OpenSSL's exit handler frees the locks they take: the process would die of
    /// a segfault (in `pthread_rwlock_wrlock`) instead of exiting, as it once did at `make up`'s Ctrl-C.
    static func end(status: Int32) -> Never {
        fflush(nil)
        _exit(status)
    }

    /// The group `run` runs; tests trigger its graceful shutdown instead of sending a signal.
    public static func makeGroup(
        _ services: [(name: String, service: any Service)],
        shutdownGrace: Duration,
        logger: Logger
    ) -> ServiceGroup {
        var configuration = ServiceGroupConfiguration(
            services: services.map { .init(service: $0.service, serviceName: $0.name) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
        configuration.maximumGracefulShutdownDuration = shutdownGrace
        configuration.maximumCancellationDuration = .seconds(5)
        return ServiceGroup(configuration: configuration)
    }
}

/// The trace exporter, in a service group of its own, stopped after the services' group within a bound. It exports
/// over gRPC, and a collector that is gone (stopped first, as compose does) holds its last flush for the transport's
/// connect timeout (10 s), which cancellation does not cut short: inside the services' group that ran past its
/// cancellation limit, and ServiceLifecycle ends the process with a trap (exit 132) instead of 0.
final class TraceExporter: Sendable {
    /// How long the spans of the shutdown may take to go out.
    static let flushLimit: Duration = .seconds(3)

    private let group: ServiceGroup
    private let finished = Atomic(false)

    init(_ exporter: any Service, logger: Logger) {
        var configuration = ServiceGroupConfiguration(
            services: [.init(service: exporter, serviceName: "tracing")], logger: logger)
        // No signals (the services' group takes them) and no limits, so that this group can never trap.
        configuration.maximumGracefulShutdownDuration = nil
        configuration.maximumCancellationDuration = nil
        group = ServiceGroup(configuration: configuration)
        Task { [self] in
            try? await group.run()
            finished.store(true, ordering: .releasing)
        }
    }

    /// Asks the exporter to flush and stop, and waits for it at most `limit`.
    func stop(within limit: Duration) async {
        await group.triggerGracefulShutdown()
        let deadline = ContinuousClock.now + limit
        while !finished.load(ordering: .acquiring), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }
}

/// Runs `operation` until it returns or graceful shutdown begins, which cancels it. A cancellation that the
/// shutdown caused is a normal end, not a failure of the service.
/// - Returns: `true` when `operation` ran to completion, `false` when the shutdown cut it short.
@discardableResult
public func runUntilGracefulShutdown(_ operation: @Sendable @escaping () async throws -> Void) async throws -> Bool {
    do {
        try await cancelWhenGracefulShutdown(operation)
        return true
    } catch is CancellationError where Task.isShuttingDownGracefully {
        return false
    }
}

/// The configuration file provider's log: it reports a file that cannot be re-read at debug level only, and
/// again at every poll, which would hide a broken edit or flood the log. Here that report is one error per
/// distinct problem, and the provider's routine debug chatter is left out.
enum ConfigurationFileLog {
    static func logger(_ process: Logger) -> Logger {
        let lastProblem = LastProblem()
        return Logger(label: "configuration") { _ in Handler(process: process, lastProblem: lastProblem) }
    }

    /// The problem reported last, shared by the copies of the handler.
    private final class LastProblem: Sendable {
        let text = Mutex<String?>(nil)
    }

    private struct Handler: LogHandler {
        let process: Logger
        let lastProblem: LastProblem
        var metadata: Logger.Metadata = [:]
        var metadataProvider: Logger.MetadataProvider?
        var logLevel: Logger.Level = .debug

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            guard event.level == .debug else {
                return process.log(level: event.level, event.message, metadata: event.metadata)
            }
            guard let error = event.metadata?["error"] else {
                if "\(event.message)".hasPrefix("Successfully reloaded") { lastProblem.text.withLock { $0 = nil } }
                return
            }
            let isNew = lastProblem.text.withLock { last in
                defer { last = "\(error)" }
                return last != "\(error)"
            }
            if isNew {
                process.error(
                    "the configuration file cannot be read; the previous settings stay until it is fixed",
                    metadata: ["error": error])
            }
        }
    }
}
