import Logging
import ServiceLifecycle
import ShippyStorage
import Synchronization

/// Connects the dependencies one by one through `StartupRetry`, then reports SERVING until shutdown, except
/// while a dependency's probe fails: then NOT_SERVING, so that probes and balancers take the replica out of
/// rotation until the database is back (the probes run every `probeInterval`).
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
    private let probeInterval: Duration
    /// Opens once every dependency is connected.
    public let ready = ReadinessSignal()

    public init(
        dependencies: [Dependency], retry: StartupRetry, health: HealthService, logger: Logger,
        probeInterval: Duration = .seconds(2)
    ) {
        self.dependencies = dependencies
        self.retry = retry
        self.health = health
        self.logger = logger
        self.probeInterval = probeInterval
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
        _ = try? await runUntilGracefulShutdown { try await probe() }
        for dependency in dependencies.reversed() { await dependency.close() }
    }

    /// Until shutdown: NOT_SERVING from the first failed probe, SERVING again once every probe passes. A probe
    /// that has not answered within the interval has failed (a database that is down may take its driver's
    /// whole timeout to say so); it is left to finish, and no other round starts meanwhile.
    private func probe() async throws {
        var lost: String?
        var round: Task<(name: String, error: any Error)?, Never>?
        while true {
            try await Task.sleep(for: probeInterval)
            if round == nil {
                round = Task { [dependencies] in
                    for dependency in dependencies {
                        guard let probe = dependency.probe else { continue }
                        do { try await probe() } catch { return (dependency.name, error) }
                    }
                    return nil
                }
            }
            let failed: (name: String, error: any Error)?
            if let finished = await Self.value(of: round!, within: probeInterval) {
                failed = finished
                round = nil
            } else {
                let probed = dependencies.filter { $0.probe != nil }.map(\.name).joined(separator: " or ")
                failed = (lost ?? probed, ProbeTimeout(after: probeInterval))
            }
            try Task.checkCancellation()
            switch (lost, failed) {
            case (nil, let failed?):
                logger.error(
                    "lost a dependency: NOT_SERVING until it answers again",
                    metadata: ["dependency": "\(failed.name)", "error": "\(failed.error)"])
                health.setServing(false)
                lost = failed.name
            case (let name?, nil):
                logger.info("the dependency answers again: serving", metadata: ["dependency": "\(name)"])
                health.setServing(true)
                lost = nil
            default: break
            }
        }
    }

    /// A continuation that the first of several tasks resumes.
    private final class OnceResumed<T: Sendable>: Sendable {
        let continuation = Mutex<CheckedContinuation<T, Never>?>(nil)
    }

    private struct ProbeTimeout: Error, CustomStringConvertible {
        let after: Duration
        var description: String { "no answer within \(Double(after.milliseconds) / 1000) s" }
    }

    /// The task's value, or `nil` when it has not finished within `timeout` (it goes on running).
    private static func value<T: Sendable>(of task: Task<T, Never>, within timeout: Duration) async -> T? {
        // A reference: the two racing tasks outlive this call, so they must not share its frame.
        let first = OnceResumed<T?>()
        return await withCheckedContinuation { continuation in
            first.continuation.withLock { $0 = continuation }
            let resume = { @Sendable (value: T?) in first.continuation.withLock { $0.take() }?.resume(returning: value)
            }
            Task { resume(.some(await task.value)) }
            Task {
                try? await Task.sleep(for: timeout)
                resume(nil)
            }
        }
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
