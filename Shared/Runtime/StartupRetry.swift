import Logging
import ShippyDomain

/// Retries connecting to a dependency with exponential backoff and jitter until a deadline.
///
/// Each failed attempt is logged with the dependency's address (never its credentials); the caller
/// passes an address that is already safe to log.
public struct StartupRetry: Sendable {
    /// How long to keep trying before giving up.
    public var deadline: Duration
    public var initialDelay: Duration
    /// The longest pause between attempts; short, so that a dependency that appears is seen within a second.
    public var maximumDelay: Duration

    public init(
        deadline: Duration,
        initialDelay: Duration = .milliseconds(100),
        maximumDelay: Duration = .milliseconds(500)
    ) {
        self.deadline = deadline
        self.initialDelay = initialDelay
        self.maximumDelay = maximumDelay
    }

    /// Calls `attempt` until it succeeds.
    /// - Throws: `StartupError` when the deadline passes first; `CancellationError` when cancelled.
    public func run(
        _ dependency: String,
        logger: Logger,
        _ attempt: () async throws -> Void
    ) async throws {
        let clock = ContinuousClock()
        let start = clock.now
        var delay = initialDelay
        var attempts = 0
        while true {
            attempts += 1
            do {
                try await attempt()
                logger.info("connected", metadata: ["dependency": "\(dependency)", "attempts": "\(attempts)"])
                return
            } catch {
                let waited = clock.now - start
                guard waited + delay < deadline else {
                    throw StartupError(dependency: dependency, deadline: deadline, reason: "\(error)")
                }
                // Jitter in [delay/2, delay] keeps replicas that start together from retrying in lockstep.
                let pause = delay * Double.random(in: 0.5...1)
                logger.warning(
                    "waiting for dependency",
                    metadata: [
                        "dependency": "\(dependency)", "attempt": "\(attempts)",
                        "retry_in_ms": "\(pause.milliseconds)", "error": "\(error)",
                    ]
                )
                try await Task.sleep(for: pause)
                delay = min(delay * 2, maximumDelay)
            }
        }
    }
}

/// A dependency that did not come up before the startup deadline.
public struct StartupError: Error, CustomStringConvertible {
    public var dependency: String
    public var deadline: Duration
    public var reason: String

    public var description: String {
        "gave up waiting for \(dependency) after \(Double(deadline.milliseconds) / 1000) s: \(reason)"
    }
}
