import ShippyDomain
import ShippyRuntime
import ShippyTestSupport
import Synchronization
import Testing

/// The bcrypt admission: a call waits only when it can be served in time, a refused or departed call costs no
/// work, and free slots go round the clients in turn. Invariant after every step: `inFlight` is the works
/// running plus those waiting, and a work runs only for a call that was admitted and is still wanted.
@Suite struct AdmissionGateTests {
    /// Works that block until the test releases them, recording the order they started in.
    final class Works: Sendable {
        private let state = Mutex<(started: [String], blocked: [String: CheckedContinuation<Void, Never>])>(([], [:]))

        var started: [String] { state.withLock { $0.started } }

        func work(_ name: String) async {
            await withCheckedContinuation { continuation in
                state.withLock {
                    $0.started.append(name)
                    $0.blocked[name] = continuation
                }
            }
        }

        /// Lets `name` finish once it has started.
        func release(_ name: String) async {
            #expect(await eventually(within: .seconds(10)) { self.state.withLock { $0.blocked[name] != nil } })
            state.withLock { $0.blocked.removeValue(forKey: name) }?.resume()
        }
    }

    /// The gate's policy, which a test changes as the configuration would.
    final class Policy: Sendable {
        private let value = Mutex(AdmissionGate.Policy(queueLimit: 100, maximumWait: .seconds(3600)))
        var current: AdmissionGate.Policy {
            get { value.withLock { $0 } }
            set { value.withLock { $0 = newValue } }
        }
    }

    static func gate(workTime: Duration = .milliseconds(1), policy: Policy = Policy()) -> AdmissionGate {
        AdmissionGate(workers: 1, policy: { policy.current }, expectedWorkTime: workTime, busyMessage: "busy")
    }

    /// Starts a call of `client` running `name` and waits until the gate counts it, so calls queue in order.
    @discardableResult
    static func start(
        _ name: String, of client: String, deadline: ContinuousClock.Instant? = nil, on gate: AdmissionGate,
        works: Works
    ) async -> Task<Void, any Error> {
        let before = gate.inFlight
        let call = Task { try await gate.run(client: client, deadline: deadline) { await works.work(name) } }
        #expect(await eventually(within: .seconds(10)) { gate.inFlight == before + 1 })
        return call
    }

    static func refusal(_ call: () async throws -> Void) async -> ShippyError? {
        do {
            try await call()
            return nil
        } catch {
            return error as? ShippyError
        }
    }

    @Test func freeSlotsGoRoundTheClientsInTurn() async throws {
        let gate = Self.gate()
        let works = Works()
        var calls = [await Self.start("A0", of: "a", on: gate, works: works)]
        for name in ["A1", "A2", "A3"] { calls.append(await Self.start(name, of: "a", on: gate, works: works)) }
        calls.append(await Self.start("B1", of: "b", on: gate, works: works))
        #expect(works.started == ["A0"] && gate.inFlight == 5)
        for name in ["A0", "A1", "B1", "A2", "A3"] { await works.release(name) }
        for call in calls { try await call.value }
        #expect(works.started == ["A0", "A1", "B1", "A2", "A3"], "b's call came before a's later ones")
        #expect(gate.inFlight == 0)
    }

    /// With two slots both held by one client's flood, another client's call takes the next slot that frees,
    /// ahead of the flood's waiting calls.
    @Test func theNextSlotGoesToTheClientWithTheFewestWorksRunning() async throws {
        let gate = AdmissionGate(
            workers: 2, policy: { .init(queueLimit: 100, maximumWait: .seconds(3600)) },
            expectedWorkTime: .milliseconds(1), busyMessage: "busy")
        let works = Works()
        var calls: [Task<Void, any Error>] = []
        for name in ["A0", "A1", "A2", "A3"] { calls.append(await Self.start(name, of: "a", on: gate, works: works)) }
        calls.append(await Self.start("B1", of: "b", on: gate, works: works))
        #expect(works.started == ["A0", "A1"])
        await works.release("A0")
        #expect(await eventually(within: .seconds(10)) { works.started.count == 3 })
        #expect(works.started.last == "B1", "b had nothing running; a had A1")
        for name in ["A1", "B1", "A2", "A3"] { await works.release(name) }
        for call in calls { try await call.value }
        #expect(gate.inFlight == 0)
    }

    @Test func aCallThatCannotBeServedInTimeIsRefusedAtOnceAndCostsNoWork() async throws {
        let policy = Policy()
        let gate = Self.gate(workTime: .seconds(1), policy: policy)
        let works = Works()
        let first = await Self.start("first", of: "a", on: gate, works: works)

        // One work ahead (1 s) and its own (1 s) end past a deadline 1.5 s away.
        let late = await Self.refusal {
            try await gate.run(client: "b", deadline: .now + .milliseconds(1500)) { await works.work("late") }
        }
        #expect(late?.code == .unavailable && late?.message == "busy" && late?.retryAfter == 1)
        // With 10 s to spare it waits.
        let patient = await Self.start("patient", of: "b", deadline: .now + .seconds(10), on: gate, works: works)

        // Two works ahead: an expected wait of 2 s, past a longest wait of 1.5 s.
        policy.current.maximumWait = .milliseconds(1500)
        let tooLong = await Self.refusal { try await gate.run(client: "c", deadline: nil) { await works.work("long") } }
        #expect(tooLong?.code == .unavailable && tooLong?.retryAfter == 2)
        // A full queue refuses whatever the wait.
        policy.current = .init(queueLimit: 2, maximumWait: .seconds(3600))
        let full = await Self.refusal { try await gate.run(client: "d", deadline: nil) { await works.work("full") } }
        #expect(full?.code == .unavailable)
        #expect(gate.inFlight == 2)

        await works.release("first")
        await works.release("patient")
        try await first.value
        try await patient.value
        #expect(works.started == ["first", "patient"], "no refused call did any work")
        #expect(gate.inFlight == 0)
    }

    @Test func aCallCancelledOrTooLateLeavesTheQueueWithoutDoingItsWork() async throws {
        let gate = Self.gate()
        let works = Works()
        let first = await Self.start("first", of: "a", on: gate, works: works)
        let cancelled = await Self.start("cancelled", of: "b", on: gate, works: works)
        let expiring = await Self.start(
            "expiring", of: "c", deadline: .now + .milliseconds(300), on: gate, works: works)

        cancelled.cancel()
        let gone = await Self.refusal { try await cancelled.value }
        #expect(gone?.code == .deadlineExceeded)
        #expect(gate.inFlight == 2, "the cancelled call left the queue at once")

        // The deadline passes while the call waits: when its turn comes it is refused as busy, not run.
        try await Task.sleep(until: .now + .milliseconds(400))
        await works.release("first")
        try await first.value
        let late = await Self.refusal { try await expiring.value }
        #expect(late?.code == .unavailable && late?.message == "busy")
        #expect(works.started == ["first"])
        #expect(gate.inFlight == 0)

        // The slot is free again.
        let next = await Self.start("next", of: "b", on: gate, works: works)
        await works.release("next")
        try await next.value
        #expect(works.started == ["first", "next"])
    }

    @Test func grpcTimeoutsAreReadAsTheProtocolWritesThem() {
        #expect(CallDeadline.timeout("2S") == .seconds(2))
        #expect(CallDeadline.timeout("1500m") == .milliseconds(1500))
        #expect(CallDeadline.timeout("3M") == .seconds(180))
        #expect(CallDeadline.timeout("1H") == .seconds(3600))
        #expect(CallDeadline.timeout("10u") == .microseconds(10))
        #expect(CallDeadline.timeout("99999999n") == .nanoseconds(99_999_999))
        for bad in ["", "S", "2", "2s", "-1S", "123456789S", "1.5S", "2 S"] {
            #expect(CallDeadline.timeout(bad) == nil, "\(bad)")
        }
    }

    /// A retry hint never sends a client back before the wait is over, and is never 0.
    @Test func aWaitIsHintedInWholeSecondsRoundedUp() {
        let cases: [(Duration, Int)] = [
            (.zero, 1), (.milliseconds(1), 1), (.seconds(1), 1), (.milliseconds(1_001), 2), (.seconds(59.5), 60),
        ]
        for (wait, seconds) in cases { #expect(wait.wholeSecondsRoundedUp == seconds, "\(wait)") }
    }
}
