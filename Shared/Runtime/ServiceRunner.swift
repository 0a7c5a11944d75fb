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
