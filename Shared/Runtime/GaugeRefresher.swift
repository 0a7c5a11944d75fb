import Logging
import ServiceLifecycle

/// Reads figures that live in a store (room left per vessel, the outbox's backlog, a consumer's lag) into their
/// gauges every `interval`, until shutdown. A failed read is logged at debug level and tried again: the gauges
/// then keep their last values, and the service's health and logs tell about the store.
public struct GaugeRefresher: Service {
    let name: String
    let interval: Duration
    let logger: Logger
    let refresh: @Sendable () async throws -> Void

    public init(
        _ name: String, every interval: Duration = .seconds(5), logger: Logger,
        refresh: @escaping @Sendable () async throws -> Void
    ) {
        self.name = name
        self.interval = interval
        self.logger = logger
        self.refresh = refresh
    }

    public func run() async throws {
        try await runUntilGracefulShutdown {
            while true {
                do {
                    try await refresh()
                } catch {
                    logger.debug("\(name) will be read again", metadata: ["error": "\(error)"])
                }
                try await Task.sleep(for: interval)
            }
        }
    }
}
