import Logging
import ShippyRuntime
import ShippyStorage

/// Releases reservations that were never confirmed (a consignment-service that crashed between `Book` and
/// `Confirm`) once they expire, every `interval`: room leaks for at most the reservation lifetime plus one
/// interval. Every replica sweeps; the conditional updates make that safe.
enum BookingSweeper {
    static func service(repository: any VesselRepository, interval: Duration, logger: Logger) -> PeriodicWork {
        PeriodicWork("the reservation sweep", every: interval, firstRound: .afterInterval, logger: logger) {
            let released = try await repository.releaseExpired(now: VesselServiceHandler.millisecondsSince1970())
            if released > 0 {
                logger.notice("released expired reservations", metadata: ["count": "\(released)"])
            }
        }
    }
}
