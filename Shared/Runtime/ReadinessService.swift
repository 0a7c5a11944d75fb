import Logging
import ServiceLifecycle

/// A dependency a service needs before it can serve: a database, a broker, another service.
public struct Dependency: Sendable {
    /// How logs and errors name it, with its address and never its credentials: "MongoDB at mongodb://…".
    public var name: String
    /// One connection attempt: connect, check, prepare (indexes, schema, seed). Must be idempotent.
    public var connect: @Sendable () async throws -> Void
    /// Releases what `connect` opened; runs after the gRPC server has stopped.
    public var close: @Sendable () async -> Void

    public init(
        name: String,
        connect: @escaping @Sendable () async throws -> Void,
        close: @escaping @Sendable () async -> Void = {}
    ) {
        self.name = name
        self.connect = connect
        self.close = close
    }
}

/// Connects the dependencies one by one through `StartupRetry`, then reports SERVING until shutdown.
///
/// It runs beside the gRPC server, so health answers NOT_SERVING while a database is late instead of the
/// process crashing. Listed before the server in the service group, it is shut down after it.
public struct ReadinessService: Service {
    private let dependencies: [Dependency]
    private let retry: StartupRetry
    private let health: HealthService
    private let logger: Logger

    public init(dependencies: [Dependency], retry: StartupRetry, health: HealthService, logger: Logger) {
        self.dependencies = dependencies
        self.retry = retry
        self.health = health
        self.logger = logger
    }

    public func run() async throws {
        defer { health.setServing(false) }
        // A shutdown while still retrying ends the wait at once instead of after the deadline.
        let connected = try await runUntilGracefulShutdown { [dependencies, retry, logger] in
            for dependency in dependencies {
                try await retry.run(dependency.name, logger: logger, dependency.connect)
            }
        }
        guard connected else {
            logger.info("shutting down before the dependencies were connected")
            for dependency in dependencies.reversed() { await dependency.close() }
            return
        }
        health.setServing(true)
        logger.info("serving")
        try? await gracefulShutdown()
        for dependency in dependencies.reversed() { await dependency.close() }
    }
}
