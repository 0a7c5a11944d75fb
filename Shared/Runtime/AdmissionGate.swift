import ShippyDomain
import Synchronization

/// Admits at most `limit` units of costly work at once (bcrypt hashes): beyond it a call fails at once with
/// `unavailable` and a message to retry, instead of joining a queue that grows without bound while callers
/// time out.
public final class AdmissionGate: Sendable {
    private let currentLimit: @Sendable () -> Int
    private let busyMessage: String
    private let admitted = Mutex(0)

    /// - Parameters:
    ///   - limit: read at each admission, so the configuration may change it while the service runs.
    ///   - busyMessage: what a refused caller is told.
    public init(limit: @escaping @Sendable () -> Int, busyMessage: String) {
        self.currentLimit = limit
        self.busyMessage = busyMessage
    }

    public convenience init(limit: Int, busyMessage: String) {
        self.init(limit: { limit }, busyMessage: busyMessage)
    }

    public var limit: Int { currentLimit() }

    /// Runs `work` once admitted.
    /// - Throws: `ShippyError` `.unavailable` with `busyMessage` when `limit` works already run or wait.
    public func run<T: Sendable>(_ work: () async throws -> T) async throws -> T {
        let limit = self.limit
        let entered = admitted.withLock { count in
            guard count < limit else { return false }
            count += 1
            return true
        }
        guard entered else { throw ShippyError.unavailable(busyMessage) }
        defer { admitted.withLock { $0 -= 1 } }
        return try await work()
    }

    /// How many works run or wait now.
    public var inFlight: Int { admitted.withLock { $0 } }
}
