import Logging
import ServiceLifecycle
import Synchronization

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
///
/// It is the one readiness path of every process: health turns SERVING through it, and work that needs the
/// dependencies (the outbox publisher, the mail consumer) waits on `ready` instead of polling anything.
public struct ReadinessService: Service {
    private let dependencies: [Dependency]
    private let retry: StartupRetry
    private let health: HealthService
    private let logger: Logger
    /// Opens once every dependency is connected.
    public let ready = ReadinessSignal()

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
        ready.open()
        health.setServing(true)
        logger.info("serving")
        try? await gracefulShutdown()
        for dependency in dependencies.reversed() { await dependency.close() }
    }
}

/// A gate that opens once: `wait()` returns as soon as it is open, or throws `CancellationError` when the
/// waiting task is cancelled first (a shutdown before the dependencies came up).
public final class ReadinessSignal: Sendable {
    private struct State {
        var isOpen = false
        var waiters: [UInt64: CheckedContinuation<Void, any Error>] = [:]
        var nextID: UInt64 = 0
    }
    private let state = Mutex(State())

    public init() {}

    public var isOpen: Bool { state.withLock { $0.isOpen } }

    public func open() {
        let waiters = state.withLock { state in
            state.isOpen = true
            defer { state.waiters = [:] }
            return state.waiters.values
        }
        for waiter in waiters { waiter.resume() }
    }

    public func wait() async throws {
        let id = state.withLock { state in
            defer { state.nextID += 1 }
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let resumeNow: Result<Void, any Error>? = state.withLock { state in
                    if state.isOpen { return .success(()) }
                    if Task.isCancelled { return .failure(CancellationError()) }
                    state.waiters[id] = continuation
                    return nil
                }
                if let resumeNow { continuation.resume(with: resumeNow) }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume(throwing: CancellationError())
        }
    }
}
