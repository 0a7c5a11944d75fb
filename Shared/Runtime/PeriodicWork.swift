import Logging
import ServiceLifecycle

/// Runs `work` every `interval` until shutdown: the booking sweep, and the gauges read from a store (room left per
/// vessel, the outbox's backlog, a consumer's lag). A failed round is logged at debug level and tried again at the
/// next: the service's health and logs tell about the store, and gauges keep their last values meanwhile.
public struct PeriodicWork: Service {
    /// Whether the first round runs at start (gauges that should show at once) or one interval later.
    public enum FirstRound: Sendable {
        case atStart, afterInterval
    }

    let name: String
    let interval: Duration
    let firstRound: FirstRound
    let logger: Logger
    let work: @Sendable () async throws -> Void

    /// - Parameter name: what the work is, for the log: "the reservation sweep".
    public init(
        _ name: String, every interval: Duration = .seconds(5), firstRound: FirstRound = .atStart, logger: Logger,
        work: @escaping @Sendable () async throws -> Void
    ) {
        self.name = name
        self.interval = interval
        self.firstRound = firstRound
        self.logger = logger
        self.work = work
    }

    public func run() async throws {
        try await runUntilGracefulShutdown {
            if firstRound == .afterInterval { try await Task.sleep(for: interval) }
            while true {
                do {
                    try await work()
                } catch {
                    logger.debug("\(name) will be tried again", metadata: ["error": "\(error)"])
                }
                try await Task.sleep(for: interval)
            }
        }
    }
}
