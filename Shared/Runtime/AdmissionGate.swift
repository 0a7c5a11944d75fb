import ShippyDomain
import Synchronization

/// Admits costly work (bcrypt hashes) to `workers` slots, one per thread that does it. A call that finds every
/// slot taken waits in a bounded queue only when it can be served in time: when its expected wait (the works
/// ahead of it, divided among the slots, times the measured time of one work) is within `maximumWait`, and its
/// expected end is within its deadline with a quarter of its time to spare. Otherwise it is refused at once with
/// `unavailable` and a retry hint, and costs no work. A waiting call whose turn comes too late to end within its
/// deadline (the works ahead took longer than measured) is refused then, as busy, still without work; one whose
/// task is cancelled leaves the queue at once. (gRPC also signals an RPC's cancellation when the server begins
/// to shut down, when its calls in flight must still be served, so that signal is not listened to.)
///
/// The queue is fair between clients: each client (`run`'s `client`, an address) has a queue of its own, and a
/// freed slot goes to the waiting client with the fewest works running, the earliest in turn among equals. So a
/// flood from one client, however long, delays another client's call only until the next slot frees.
public final class AdmissionGate: Sendable {
    public struct Policy: Sendable {
        /// Works that may run or wait at once; past it every call is refused.
        public var queueLimit: Int
        /// The longest a call may be expected to wait for a slot.
        public var maximumWait: Duration

        public init(queueLimit: Int, maximumWait: Duration) {
            self.queueLimit = queueLimit
            self.maximumWait = maximumWait
        }
    }

    public let workers: Int
    private let currentPolicy: @Sendable () -> Policy
    private let busyMessage: String
    private let state: Mutex<State>

    /// - Parameters:
    ///   - workers: works that run at once (the threads that do them).
    ///   - policy: read at each admission, so the configuration may change it while the service runs.
    ///   - expectedWorkTime: one work's time until the first is measured.
    ///   - busyMessage: what a refused caller is told.
    public init(
        workers: Int, policy: @escaping @Sendable () -> Policy, expectedWorkTime: Duration, busyMessage: String
    ) {
        self.workers = max(1, workers)
        self.currentPolicy = policy
        self.busyMessage = busyMessage
        self.state = Mutex(State(workTime: expectedWorkTime))
    }

    /// Runs `work` once admitted, measuring how long it takes.
    /// - Parameters:
    ///   - client: whose call it is; the queue is fair between clients.
    ///   - deadline: when the caller stops waiting for the answer; `nil` for no deadline.
    /// - Throws: `ShippyError` `.unavailable` (with `retryAfter`) when the call cannot be served in time, or
    ///   `.deadlineExceeded` when its task was cancelled while it waited.
    public func run<T: Sendable>(
        client: String, deadline: ContinuousClock.Instant?, _ work: () async throws -> T
    ) async throws -> T {
        try await enter(client: client, deadline: deadline)
        let started = ContinuousClock.now
        defer { leave(client, took: ContinuousClock.now - started) }
        return try await work()
    }

    /// Works running or waiting now.
    public var inFlight: Int { state.withLock { $0.running + $0.waiting } }

    private func enter(client: String, deadline: ContinuousClock.Instant?) async throws {
        let id = state.withLock { $0.arrive() }
        let arrived = ContinuousClock.now
        let mustEnd = deadline.map { arrived + ($0 - arrived) * 3 / 4 }
        let withdraw: @Sendable () -> Void = { [self] in
            state.withLock { $0.withdraw(id) }?.resume(throwing: Self.gone)
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let admission = state.withLock { state in
                    state.admit(
                        Waiter(id: id, client: client, mustEnd: mustEnd, continuation: continuation),
                        workers: workers, policy: currentPolicy(), now: .now)
                }
                switch admission {
                case .enter: continuation.resume()
                case .queued: break
                case .withdrawn: continuation.resume(throwing: Self.gone)
                case .refused(let wait): continuation.resume(throwing: busy(wait))
                }
            }
        } onCancel: {
            withdraw()
        }
    }

    /// The refusal of a call that cannot be served in time, with the expected wait as its retry hint.
    private func busy(_ wait: Duration) -> ShippyError {
        ShippyError(.unavailable, busyMessage, retryAfter: wait.wholeSecondsRoundedUp)
    }

    /// Hands the slot to the next waiter in turn (refusing, as busy, those that could no longer end within their
    /// deadline), or frees it.
    private func leave(_ client: String, took: Duration) {
        let (next, late, workTime) = state.withLock { state in
            state.workTime = (state.workTime * 4 + took) / 5
            state.finished(client)
            let (next, late) = state.handOver(now: .now)
            return (next, late, state.workTime)
        }
        for waiter in late { waiter.continuation.resume(throwing: busy(workTime)) }
        next?.continuation.resume()
    }

    private static let gone = ShippyError(.deadlineExceeded, "the call was cancelled while it waited to be served")

    private struct Waiter {
        var id: UInt64
        var client: String
        /// When its work must end: three quarters of the way from its arrival to its deadline. The last quarter is
        /// kept for what the estimate does not see: a hash slows while the flood that queues it keeps the cores
        /// busy, and the call reached us later than its caller sent it.
        var mustEnd: ContinuousClock.Instant?
        var continuation: CheckedContinuation<Void, any Error>
    }

    private enum Admission {
        case enter, queued, withdrawn
        /// Refused: the expected wait.
        case refused(Duration)
    }

    /// A call between `arrive` and its admission is `arriving`, so that a cancellation in that instant is kept.
    private enum Call {
        case arriving, withdrawn
        case waiting(Waiter)
    }

    private struct State {
        /// The measured time of one work (a moving average).
        var workTime: Duration
        /// Works running: always the sum of `active`'s values, kept as a count so that admission is O(1).
        var running = 0
        /// Works running, by client (only clients with some).
        var active: [String: Int] = [:]
        var waiting = 0
        var nextID: UInt64 = 0
        var calls: [UInt64: Call] = [:]
        /// Each client's waiting calls, oldest first.
        var queues: [String: [UInt64]] = [:]
        /// The clients with waiting calls, in the order their turns come.
        var turns: [String] = []

        init(workTime: Duration) { self.workTime = workTime }

        mutating func arrive() -> UInt64 {
            nextID &+= 1
            calls[nextID] = .arriving
            return nextID
        }

        mutating func admit(_ waiter: Waiter, workers: Int, policy: Policy, now: ContinuousClock.Instant) -> Admission {
            guard case .arriving = calls.removeValue(forKey: waiter.id) else { return .withdrawn }
            if running < workers && waiting == 0 {
                running += 1
                active[waiter.client, default: 0] += 1
                return .enter
            }
            // Round robin: before this call come the client's own waiting calls, and from every other client as
            // many as this call's turn (one more than the client's own), at most what that client has waiting.
            let own = queues[waiter.client]?.count ?? 0
            let othersAhead = queues.reduce(0) { sum, entry in
                entry.key == waiter.client ? sum : sum + min(entry.value.count, own + 1)
            }
            let rounds = (running + own + othersAhead - workers) / workers + 1
            let expectedWait = workTime * max(1, rounds)
            let tooLate = waiter.mustEnd.map { now + expectedWait + workTime > $0 } ?? false
            guard running + waiting < policy.queueLimit, expectedWait <= policy.maximumWait, !tooLate else {
                return .refused(expectedWait)
            }
            calls[waiter.id] = .waiting(waiter)
            if queues[waiter.client] == nil { turns.append(waiter.client) }
            queues[waiter.client, default: []].append(waiter.id)
            waiting += 1
            return .queued
        }

        /// Takes a call out: a waiting one is returned, to be resumed by the caller outside the lock.
        mutating func withdraw(_ id: UInt64) -> CheckedContinuation<Void, any Error>? {
            switch calls[id] {
            case .arriving:
                calls[id] = .withdrawn
                return nil
            case .waiting(let waiter):
                calls[id] = nil
                waiting -= 1
                queues[waiter.client]?.removeAll { $0 == id }
                if queues[waiter.client]?.isEmpty == true {
                    queues[waiter.client] = nil
                    turns.removeAll { $0 == waiter.client }
                }
                return waiter.continuation
            case .withdrawn, nil:
                return nil
            }
        }

        mutating func finished(_ client: String) {
            active[client, default: 1] -= 1
            if active[client] == 0 { active[client] = nil }
        }

        /// The next waiter in turn, which takes the freed slot, and the waiters skipped because their work would
        /// end past their deadline; with no one waiting, the slot is freed.
        mutating func handOver(now: ContinuousClock.Instant) -> (next: Waiter?, late: [Waiter]) {
            var late: [Waiter] = []
            while !turns.isEmpty {
                let fewest = turns.indices.min { active[turns[$0], default: 0] < active[turns[$1], default: 0] }!
                let client = turns.remove(at: fewest)
                let id = queues[client]!.removeFirst()
                if queues[client]!.isEmpty { queues[client] = nil } else { turns.append(client) }
                waiting -= 1
                guard case .waiting(let waiter) = calls.removeValue(forKey: id) else { continue }
                if let mustEnd = waiter.mustEnd, now + workTime > mustEnd {
                    late.append(waiter)
                    continue
                }
                active[client, default: 0] += 1
                return (waiter, late)
            }
            running -= 1
            return (nil, late)
        }
    }
}
