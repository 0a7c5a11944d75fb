import ShippyContracts
import ShippyDomain
import ShippyIdentity
import ShippyStorage
import Synchronization

/// A clock the test moves: milliseconds since 1970.
package final class TestClock: Sendable {
    private let milliseconds: Mutex<Int64>

    package init(_ start: Int64 = 1_700_000_000_000) { milliseconds = Mutex(start) }

    package var now: Int64 { milliseconds.withLock { $0 } }

    package func advance(by duration: Duration) {
        milliseconds.withLock { $0 += duration.milliseconds }
    }
}

/// vessel-service in process: the vessel-booking port straight over a `VesselRepository`, as vessel-service's
/// handler calls it. The credential stands for the user (the owner of what it books).
package struct RepositoryVesselBooker: VesselBooker {
    package let repository: any VesselRepository
    package let reservationLifetime: Duration
    package let clock: TestClock

    package init(_ repository: any VesselRepository, reservationLifetime: Duration = .seconds(60), clock: TestClock) {
        self.repository = repository
        self.reservationLifetime = reservationLifetime
        self.clock = clock
    }

    package func book(
        consignmentID: String, attempt: Int64, specification: VesselSpecification, credential: String
    ) async throws(ShippyError) -> Booking {
        try await repository.book(
            try BookingRequest(
                consignmentID: consignmentID, specification: specification, ownerID: credential, attempt: attempt),
            expiresAt: clock.now + reservationLifetime.milliseconds)
    }

    package func confirm(
        consignmentID: String, attempt: Int64, credential: String
    ) async throws(ShippyError) -> Booking {
        try await repository.confirm(consignmentID: consignmentID, attempt: attempt)
    }

    package func release(consignmentID: String, attempt: Int64, credential: String) async throws(ShippyError) {
        _ = try await repository.release(consignmentID: consignmentID, attempt: attempt, ownerID: credential)
    }

    package func cancel(consignmentID: String, credential: String) async throws(ShippyError) -> Booking {
        try await repository.cancel(consignmentID: consignmentID)
    }
}

/// One process of the booking protocol, failing on cue: each call it makes to the consignment store or to
/// vessel-service is a step, and at step `crashAt` it dies, before that step takes effect or after it (its answer
/// lost), or it stops (as under SIGSTOP) until `resume()`, then goes on. A dead process's every later call fails,
/// as nothing of it reaches anyone.
package final class CrashPlan: Sendable {
    package enum Moment: String, Sendable, CaseIterable {
        case before, after, paused
    }

    package static let crash = ShippyError(.unavailable, "the process died")
    private let crashAt: Int
    private let moment: Moment
    private struct State {
        var steps = 0
        var dead = false
        var paused = false
        var resumed = false
        var ended = false
    }
    private let state = Mutex(State())

    package init(crashAt: Int, _ moment: Moment) {
        self.crashAt = crashAt
        self.moment = moment
    }

    package func resume() { state.withLock { $0.resumed = true } }

    /// Whether the process has reached its stop, or ended without reaching it.
    package var isStoppedOrEnded: Bool { state.withLock { ($0.paused && !$0.resumed) || $0.ended } }

    /// Called when the process's call returns.
    package func end() { state.withLock { $0.ended = true } }

    /// Runs one step of the process, unless it is dead or dies at it; a paused step waits for `resume()`.
    package func step<T>(_ body: () async throws(ShippyError) -> T) async throws(ShippyError) -> T {
        let (dead, atCue) = state.withLock { state in
            guard !state.dead else { return (true, false) }
            state.steps += 1
            let atCue = state.steps == crashAt
            if atCue { if moment == .paused { state.paused = true } else { state.dead = true } }
            return (false, atCue)
        }
        if atCue && moment == .paused {
            while !state.withLock({ $0.resumed }) { try? await Task.sleep(for: .milliseconds(5)) }
            return try await body()
        }
        if dead || (atCue && moment == .before) { throw Self.crash }
        let result: T
        do {
            result = try await body()
        } catch {
            if atCue { throw Self.crash }
            throw error
        }
        if atCue { throw Self.crash }
        return result
    }
}

/// The consignment store as a process that dies on cue sees it.
package struct CrashingConsignmentRepository: ConsignmentRepository {
    let base: any ConsignmentRepository
    let plan: CrashPlan

    package init(_ base: any ConsignmentRepository, _ plan: CrashPlan) {
        self.base = base
        self.plan = plan
    }

    package func begin(
        _ consignment: Consignment, contact: Contact, credential: String, now: Int64
    ) async throws(ShippyError) -> (record: ConsignmentRecord, started: Bool) {
        try await plan.step { () async throws(ShippyError) in
            try await base.begin(consignment, contact: contact, credential: credential, now: now)
        }
    }

    package func record(id: String) async throws(ShippyError) -> ConsignmentRecord? {
        try await plan.step { () async throws(ShippyError) in try await base.record(id: id) }
    }

    package func markBooked(
        id: String, attempt: Int64, vesselID: String, event: OutboxEvent
    ) async throws(ShippyError) -> ConsignmentRecord? {
        try await plan.step { () async throws(ShippyError) in
            try await base.markBooked(id: id, attempt: attempt, vesselID: vesselID, event: event)
        }
    }

    package func markAbandoned(id: String, attempt: Int64) async throws(ShippyError) {
        try await plan.step { () async throws(ShippyError) in try await base.markAbandoned(id: id, attempt: attempt) }
    }

    package func markCancelling(
        id: String, cancelledBy: String, credential: String, now: Int64
    ) async throws(ShippyError) -> ConsignmentRecord? {
        try await plan.step { () async throws(ShippyError) in
            try await base.markCancelling(id: id, cancelledBy: cancelledBy, credential: credential, now: now)
        }
    }

    package func markCancelled(id: String, event: OutboxEvent) async throws(ShippyError) {
        try await plan.step { () async throws(ShippyError) in try await base.markCancelled(id: id, event: event) }
    }

    package func publishPending(
        limit: Int, _ publish: @escaping @Sendable (OutboxEvent) async throws -> Void
    ) async throws(ShippyError) -> Int {
        try await plan.step { () async throws(ShippyError) in try await base.publishPending(limit: limit, publish) }
    }

    package func backlog() async throws(ShippyError) -> OutboxBacklog {
        try await plan.step { () async throws(ShippyError) in try await base.backlog() }
    }

    package func unsettled(startedBefore: Int64, limit: Int) async throws(ShippyError) -> [ConsignmentRecord] {
        try await plan.step { () async throws(ShippyError) in
            try await base.unsettled(startedBefore: startedBefore, limit: limit)
        }
    }

    package func held(by userID: String) async throws(ShippyError) -> Load {
        try await plan.step { () async throws(ShippyError) in try await base.held(by: userID) }
    }

    package func consignments(
        ownedBy userID: String, page: PageRequest
    ) async throws(ShippyError) -> Page<ConsignmentRecord> {
        try await plan.step { () async throws(ShippyError) in try await base.consignments(ownedBy: userID, page: page) }
    }
}

/// vessel-service as a process that dies on cue sees it.
package struct CrashingVesselBooker: VesselBooker {
    let base: any VesselBooker
    let plan: CrashPlan

    package init(_ base: any VesselBooker, _ plan: CrashPlan) {
        self.base = base
        self.plan = plan
    }

    package func book(
        consignmentID: String, attempt: Int64, specification: VesselSpecification, credential: String
    ) async throws(ShippyError) -> Booking {
        try await plan.step { () async throws(ShippyError) in
            try await base.book(
                consignmentID: consignmentID, attempt: attempt, specification: specification, credential: credential)
        }
    }

    package func confirm(
        consignmentID: String, attempt: Int64, credential: String
    ) async throws(ShippyError) -> Booking {
        try await plan.step { () async throws(ShippyError) in
            try await base.confirm(consignmentID: consignmentID, attempt: attempt, credential: credential)
        }
    }

    package func release(consignmentID: String, attempt: Int64, credential: String) async throws(ShippyError) {
        try await plan.step { () async throws(ShippyError) in
            try await base.release(consignmentID: consignmentID, attempt: attempt, credential: credential)
        }
    }

    package func cancel(consignmentID: String, credential: String) async throws(ShippyError) -> Booking {
        try await plan.step { () async throws(ShippyError) in
            try await base.cancel(consignmentID: consignmentID, credential: credential)
        }
    }
}

/// The booking invariant at a quiescent point, as violations (none when it holds): on every vessel the room
/// taken equals the containers and kg of the booked records on it (cancelled ones hold none); every consignment
/// answered OK is booked as answered; no record is left pending or cancelling.
package func bookingInvariantViolations(
    vessels: [Vessel], records: [ConsignmentRecord], answeredOK: [Consignment]
) -> [String] {
    var violations: [String] = []
    let booked = records.filter { $0.status == .booked }
    for vessel in vessels {
        let onIt = booked.filter { $0.consignment.vesselID == vessel.id }
        let containers = onIt.reduce(0) { $0 + Int32($1.consignment.containers.count) }
        let weight = onIt.reduce(0) { $0 + $1.consignment.weight }
        let taken = (vessel.capacity - vessel.roomCapacity, vessel.maxWeight - vessel.roomWeight)
        if taken != (containers, weight) {
            violations.append(
                "\(vessel.id): room taken \(taken.0) containers \(taken.1) kg, booked consignments hold "
                    + "\(containers) containers \(weight) kg")
        }
    }
    for consignment in answeredOK where !booked.contains(where: { $0.consignment == consignment }) {
        violations.append("consignment \(consignment.id) was answered OK but is not booked as answered")
    }
    for record in records where record.status == .pending || record.status == .cancelling {
        violations.append("consignment \(record.id) attempt \(record.attempt) is still \(record.status)")
    }
    return violations
}

/// The events invariant, as violations: each consignment ever booked (booked, cancelling or cancelled) has exactly
/// one `consignment.booked` event, each cancelled one exactly one `consignment.cancelled`, and no other record has
/// any: whatever died when, a change and its event were stored together. Drains the store's outbox to read them.
package func eventViolations(in store: any ConsignmentRepository, records: [ConsignmentRecord]) async throws -> [String]
{
    let events = Mutex<[(subject: String, consignmentID: String, eventID: String)]>([])
    _ = try await store.publishPending(limit: 10_000) { event in
        let consignmentID =
            switch event.subject {
            case "consignment.booked": try Shippy_Events_ConsignmentBooked(serializedBytes: event.payload).consignmentID
            case "consignment.cancelled":
                try Shippy_Events_ConsignmentCancelled(serializedBytes: event.payload).consignmentID
            default: "?"
            }
        events.withLock { $0.append((event.subject, consignmentID, event.id.uuidString.lowercased())) }
    }
    let stored = events.withLock { $0 }
    var violations: [String] = []
    for record in records {
        let booked = stored.filter { $0.subject == "consignment.booked" && $0.consignmentID == record.id }.count
        let cancelled = stored.filter { $0.subject == "consignment.cancelled" && $0.consignmentID == record.id }.count
        let expected = (record.status.isConsignment ? 1 : 0, record.status == .cancelled ? 1 : 0)
        if (booked, cancelled) != expected {
            violations.append(
                "consignment \(record.id) (\(record.status)) has \(booked) booked and \(cancelled) cancelled events, "
                    + "not \(expected.0) and \(expected.1)")
        }
    }
    return violations
}

/// The booking use case as the crash scenarios drive it (consignment-service's `ConsignmentBooking`, which lives
/// in its executable): a create with the scenario's idempotency key, a cancel by id, and a recovery pass.
package struct BookingProcess: Sendable {
    package var create: @Sendable (Consignment, Caller) async throws -> Consignment
    package var cancel: @Sendable (String, Caller) async throws -> ConsignmentRecord
    package var recover: @Sendable () async throws -> Void

    package init(
        create: @escaping @Sendable (Consignment, Caller) async throws -> Consignment,
        cancel: @escaping @Sendable (String, Caller) async throws -> ConsignmentRecord,
        recover: @escaping @Sendable () async throws -> Void
    ) {
        self.create = create
        self.cancel = cancel
        self.recover = recover
    }
}

/// The stores of one crash scenario: a vessel-service's and a consignment-service's, fresh, and how to read back
/// every consignment record.
package struct BookingStores: Sendable {
    package var vessels: any VesselRepository
    package var consignments: any ConsignmentRepository
    package var records: @Sendable () async throws -> [ConsignmentRecord]

    package init(
        vessels: any VesselRepository, consignments: any ConsignmentRepository,
        records: @escaping @Sendable () async throws -> [ConsignmentRecord]
    ) {
        self.vessels = vessels
        self.consignments = consignments
        self.records = records
    }
}

/// A quota exactly the size of a crash scenario's consignment: counting its own record twice, or another attempt's
/// left pending, refuses it.
package let crashScenarioQuota = ConsignmentQuota(containers: 3, weight: 30_000)

/// One crash scenario: a process books three containers with a key and dies at step `crashAt` (`moment`), or stops
/// there; time passes beyond the reservation's lifetime and the recovery threshold; the sweep and recovery run (in
/// the order `sweepFirst` says); a stopped process goes on to its end; the invariant is checked; a retry with the
/// same key comes and the invariant is checked again.
/// - Parameters:
///   - room: containers the only vessel takes: 10 books the consignment, 2 refuses it (the compensation path).
///   - make: the use case over a store and a vessel booker, reading time from the clock.
/// - Returns: the violations, each naming the scenario (none when the invariant held), and whether the retry booked.
package func crashScenario(
    crashAt: Int, _ moment: CrashPlan.Moment, sweepFirst: Bool, room: Int32, caller: Caller,
    stores: BookingStores,
    make: (any ConsignmentRepository, any VesselBooker, TestClock) -> BookingProcess
) async throws -> (violations: [String], retryBooked: Bool) {
    let consignment = Consignment(
        description: "Three containers", weight: 30_000,
        containers: (1...3).map { Container(customerID: "cust\($0)", origin: "Derby") })
    try await stores.vessels.create(Vessel(id: "v1", name: "Only", capacity: room, maxWeight: 100_000))
    let clock = TestClock()
    let plan = CrashPlan(crashAt: crashAt, moment)
    let dying = make(
        CrashingConsignmentRepository(stores.consignments, plan),
        CrashingVesselBooker(RepositoryVesselBooker(stores.vessels, clock: clock), plan), clock)
    let call = Task {
        defer { plan.end() }
        return try? await dying.create(consignment, caller)
    }
    while !plan.isStoppedOrEnded { try await Task.sleep(for: .milliseconds(5)) }

    clock.advance(by: .seconds(90))
    let survivor = make(stores.consignments, RepositoryVesselBooker(stores.vessels, clock: clock), clock)
    if sweepFirst { _ = try await stores.vessels.releaseExpired(now: clock.now) }
    try await survivor.recover()
    if !sweepFirst { _ = try await stores.vessels.releaseExpired(now: clock.now) }
    plan.resume()
    var answeredOK: [Consignment] = []
    if let booked = await call.value { answeredOK.append(booked) }
    _ = try await stores.vessels.releaseExpired(now: clock.now)
    try await survivor.recover()
    let context = "crash \(moment) step \(crashAt), room \(room), sweep first: \(sweepFirst)"
    var violations = bookingInvariantViolations(
        vessels: try await stores.vessels.list(PageRequest()).items, records: try await stores.records(),
        answeredOK: answeredOK
    ).map { "\(context): \($0)" }

    let retry = try? await survivor.create(consignment, caller)
    if let first = answeredOK.first, retry != first {
        violations.append("\(context): the retry answered \(String(describing: retry)), not the first OK \(first)")
    }
    clock.advance(by: .seconds(90))
    _ = try await stores.vessels.releaseExpired(now: clock.now)
    violations += bookingInvariantViolations(
        vessels: try await stores.vessels.list(PageRequest()).items, records: try await stores.records(),
        answeredOK: retry.map { [$0] } ?? []
    ).map { "\(context), after the retry: \($0)" }
    violations += try await eventViolations(in: stores.consignments, records: try await stores.records())
        .map { "\(context): \($0)" }
    return (violations, retry != nil)
}

/// One cancel scenario: three containers are booked; a process cancels them as `caller` (their owner, or an admin
/// forcing it) and dies at step `crashAt` (`moment`), or stops there; time passes beyond the recovery threshold;
/// the sweep and recovery run; a stopped process goes on to its end. Then the invariant must hold, and a cancel
/// once begun (the record marked cancelling) must have ended cancelled, never undone; a cancel by the owner
/// afterwards answers it cancelled, and the vessel has all its room back.
/// - Returns: the violations, each naming the scenario (none when everything held).
package func cancelScenario(
    crashAt: Int, _ moment: CrashPlan.Moment, owner: Caller, caller: Caller, stores: BookingStores,
    make: (any ConsignmentRepository, any VesselBooker, TestClock) -> BookingProcess
) async throws -> [String] {
    let room = Vessel(id: "v1", name: "Only", capacity: 10, maxWeight: 100_000)
    try await stores.vessels.create(room)
    let clock = TestClock()
    let healthy = make(stores.consignments, RepositoryVesselBooker(stores.vessels, clock: clock), clock)
    let booked = try await healthy.create(
        Consignment(
            description: "Three containers", weight: 30_000,
            containers: (1...3).map { Container(customerID: "cust\($0)", origin: "Derby") }), owner)
    let plan = CrashPlan(crashAt: crashAt, moment)
    let dying = make(
        CrashingConsignmentRepository(stores.consignments, plan),
        CrashingVesselBooker(RepositoryVesselBooker(stores.vessels, clock: clock), plan), clock)
    let call = Task {
        defer { plan.end() }
        return try? await dying.cancel(booked.id, caller)
    }
    while !plan.isStoppedOrEnded { try await Task.sleep(for: .milliseconds(5)) }

    clock.advance(by: .seconds(90))
    _ = try await stores.vessels.releaseExpired(now: clock.now)
    try await healthy.recover()
    plan.resume()
    let answered = await call.value
    _ = try await stores.vessels.releaseExpired(now: clock.now)
    try await healthy.recover()

    var violations = bookingInvariantViolations(
        vessels: try await stores.vessels.list(PageRequest()).items, records: try await stores.records(),
        answeredOK: [])
    let stored = try await stores.records().first { $0.id == booked.id }
    if let answered, answered.status != .cancelled || stored?.status != .cancelled {
        violations.append(
            "the cancel answered \(answered.status), the record is \(String(describing: stored?.status))")
    }
    if stored?.status != .booked && stored?.status != .cancelled {
        violations.append("the record was left \(String(describing: stored?.status))")
    }
    if let stored, stored.status == .cancelled, stored.cancelledBy != caller.userID {
        violations.append("cancelled by \(stored.cancelledBy), not by \(caller.userID)")
    }

    let again = try? await healthy.cancel(booked.id, owner)
    if again?.status != .cancelled {
        violations.append("the owner's cancel afterwards answered \(String(describing: again?.status))")
    }
    let vessels = try await stores.vessels.list(PageRequest()).items
    violations += bookingInvariantViolations(
        vessels: vessels, records: try await stores.records(), answeredOK: []
    ).map { "after the owner's cancel: \($0)" }
    if let vessel = vessels.first, vessel.roomCapacity != room.capacity || vessel.roomWeight != room.maxWeight {
        violations.append("the vessel has \(vessel.roomCapacity) containers \(vessel.roomWeight) kg of room left")
    }
    violations += try await eventViolations(in: stores.consignments, records: try await stores.records())
    return violations.map { "cancel, crash \(moment) step \(crashAt): \($0)" }
}
