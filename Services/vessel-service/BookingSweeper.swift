import Logging
import ServiceLifecycle
import ShippyRuntime
import ShippyStorage

/// Releases reservations that were never confirmed (a consignment-service that crashed between `Book` and
/// `Confirm`) once they expire, every `interval`: room leaks for at most the reservation lifetime plus one
/// interval. Every replica sweeps; the conditional updates make that safe.
struct BookingSweeper: Service {
    let repository: any VesselRepository
    let interval: Duration
    let logger: Logger

    func run() async throws {
        try await runUntilGracefulShutdown {
            while true {
                try await Task.sleep(for: interval)
                do {
                    let released = try await repository.releaseExpired(
                        now: VesselServiceHandler.millisecondsSince1970())
                    if released > 0 {
                        logger.notice("released expired reservations", metadata: ["count": "\(released)"])
                    }
                } catch {
                    logger.debug("the reservation sweep will try again", metadata: ["error": "\(error)"])
                }
            }
        }
    }
}
