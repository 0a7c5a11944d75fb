import Logging
import ServiceLifecycle

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

    /// Sets up logging as configured, builds the services with the process's logger, and runs them: the
    /// common body of every service's `serve` command.
    public static func run(
        _ name: String,
        configuration: ServerConfiguration,
        build: (Logger) async throws -> [(name: String, service: any Service)]
    ) async throws {
        LoggingSetup.bootstrap(format: configuration.logFormat, level: configuration.logLevel)
        let logger = Logger(label: name)
        try await run(try await build(logger), shutdownGrace: configuration.shutdownGrace, logger: logger)
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
