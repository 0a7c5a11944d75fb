import ShippyDomain
import Synchronization

/// Slows password guessing: after `freeFailures` failed logins for one email from one address, the next
/// attempt from there must wait, twice as long after each further failure (`baseDelay` up to `maximumDelay`).
/// An attempt that comes early fails at once with `resourceExhausted` and the time to wait, without any bcrypt
/// work. It is a delay, not a lockout: the wait never exceeds `maximumDelay`, the right password afterwards
/// works, and the owner logging in from another address is not slowed by someone guessing elsewhere.
/// The counts are per replica, in memory, and forgotten after `memory` without failures.
final class LoginThrottle: Sendable {
    struct Policy: Sendable {
        var freeFailures = 3
        var baseDelay: Duration = .milliseconds(500)
        var maximumDelay: Duration = .seconds(30)
        var memory: Duration = .seconds(900)
        /// Entries kept at most; past it the oldest are forgotten (an attacker cycling emails cannot fill memory).
        var maximumEntries = 100_000
    }

    private struct Entry {
        var failures: Int
        var lastFailure: ContinuousClock.Instant
        var nextAllowed: ContinuousClock.Instant
    }

    private let currentPolicy: @Sendable () -> Policy
    private let entries = Mutex<[String: Entry]>([:])

    /// - Parameter policy: read at each failure, so the configuration may change it while the service runs.
    init(policy: @escaping @Sendable () -> Policy) {
        self.currentPolicy = policy
    }

    convenience init(policy: Policy = Policy()) {
        self.init(policy: { policy })
    }

    var policy: Policy { currentPolicy() }

    /// The throttle key of a login: the email in any letter case, and the client's address (`ClientAddress`).
    static func key(email: String, client: String) -> String { "\(email.lowercased())|\(client)" }

    /// - Throws: `ShippyError` `.resourceExhausted` saying how long to wait (in its message and `retryAfter`), when an
    ///   attempt comes too early.
    func check(_ key: String, now: ContinuousClock.Instant = .now) throws(ShippyError) {
        let wait = entries.withLock { entries -> Duration? in
            guard let entry = entries[key], entry.nextAllowed > now else { return nil }
            return entry.nextAllowed - now
        }
        if let wait {
            let seconds = wait.wholeSecondsRoundedUp
            throw ShippyError(
                .resourceExhausted, "too many failed logins for this email from your address; retry in \(seconds) s",
                retryAfter: seconds)
        }
    }

    func recordFailure(_ key: String, now: ContinuousClock.Instant = .now) {
        let policy = self.policy
        entries.withLock { entries in
            var entry =
                entries[key].flatMap { now - $0.lastFailure < policy.memory ? $0 : nil }
                ?? Entry(failures: 0, lastFailure: now, nextAllowed: now)
            entry.failures += 1
            entry.lastFailure = now
            if entry.failures > policy.freeFailures {
                let doublings = min(entry.failures - policy.freeFailures - 1, 16)
                entry.nextAllowed = now + min(policy.baseDelay * (1 << doublings), policy.maximumDelay)
            }
            entries[key] = entry
            if entries.count > policy.maximumEntries { Self.forgetOldest(&entries, now: now, policy: policy) }
        }
    }

    func recordSuccess(_ key: String) {
        _ = entries.withLock { $0.removeValue(forKey: key) }
    }

    private static func forgetOldest(_ entries: inout [String: Entry], now: ContinuousClock.Instant, policy: Policy) {
        let newest = entries.filter { now - $0.value.lastFailure < policy.memory }
            .sorted { $0.value.lastFailure > $1.value.lastFailure }
            .prefix(policy.maximumEntries * 9 / 10)
        entries = Dictionary(uniqueKeysWithValues: newest.map { ($0.key, $0.value) })
    }
}
