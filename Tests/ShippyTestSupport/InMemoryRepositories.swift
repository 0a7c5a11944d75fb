import Foundation
import ShippyDomain
import ShippyStorage

// In-memory stand-ins for the repositories, for unit tests only: the services never use them.

/// A `ConsignmentRepository` in memory, for unit tests only.
public actor InMemoryConsignmentRepository: ConsignmentRepository {
    /// In the order attempts began, as a store's creation order.
    private var records: [ConsignmentRecord] = []
    /// Events stored with the changes, in order, until published; and those set aside.
    public private(set) var outbox: [OutboxEvent] = []
    public private(set) var deadLetters: [OutboxEvent] = []

    public init() {}

    public func begin(
        _ consignment: Consignment, contact: Contact, credential: String, now: Int64
    ) -> (record: ConsignmentRecord, started: Bool) {
        let index = records.firstIndex { $0.id == consignment.id }
        if let index, records[index].status != .abandoned { return (records[index], false) }
        let record = ConsignmentRecord(
            consignment: consignment, status: .pending, attempt: index.map { records[$0].attempt + 1 } ?? 1,
            credential: credential, startedAtMilliseconds: now, contact: contact)
        if let index { records[index] = record } else { records.append(record) }
        return (record, true)
    }

    public func record(id: String) -> ConsignmentRecord? {
        records.first { $0.id == id }
    }

    public func markBooked(id: String, attempt: Int64, vesselID: String, event: OutboxEvent) -> ConsignmentRecord? {
        guard let index = records.firstIndex(where: { $0.id == id && $0.attempt == attempt }) else { return nil }
        switch records[index].status {
        case .abandoned, .cancelling, .cancelled: return nil
        case .booked: return records[index]
        case .pending:
            records[index].status = .booked
            records[index].consignment.vesselID = vesselID
            records[index].credential = ""
            outbox.append(event)
            return records[index]
        }
    }

    public func markAbandoned(id: String, attempt: Int64) {
        guard let index = records.firstIndex(where: { $0.id == id && $0.attempt == attempt && $0.status == .pending })
        else { return }
        records[index].status = .abandoned
        records[index].credential = ""
    }

    public func markCancelling(id: String, cancelledBy: String, credential: String, now: Int64) -> ConsignmentRecord? {
        guard let index = records.firstIndex(where: { $0.id == id && $0.status == .booked }) else { return nil }
        records[index].status = .cancelling
        records[index].cancelledBy = cancelledBy
        records[index].credential = credential
        records[index].startedAtMilliseconds = now
        return records[index]
    }

    public func markCancelled(id: String, event: OutboxEvent) {
        guard let index = records.firstIndex(where: { $0.id == id && $0.status == .cancelling }) else { return }
        records[index].status = .cancelled
        records[index].credential = ""
        outbox.append(event)
    }

    public func publishPending(
        limit: Int, _ publish: @escaping @Sendable (OutboxEvent) async throws -> Void
    ) async -> Int {
        var published = 0
        while published < limit, let event = outbox.first {
            do {
                try await publish(event)
            } catch let error as ShippyError where error.code == .invalidArgument {
                deadLetters.append(outbox.removeFirst())
                continue
            } catch {
                return published
            }
            outbox.removeFirst()
            published += 1
        }
        return published
    }

    public func backlog() -> OutboxBacklog {
        OutboxBacklog(pending: outbox.count, oldestAge: .zero, deadLettered: deadLetters.count)
    }

    public func unsettled(startedBefore: Int64, limit: Int) -> [ConsignmentRecord] {
        Array(
            records.filter { $0.status.isUnsettled && $0.startedAtMilliseconds < startedBefore }
                .sorted { $0.startedAtMilliseconds < $1.startedAtMilliseconds }.prefix(limit))
    }

    public func held(by userID: String) -> Load {
        records.filter { $0.consignment.userID == userID && $0.status.holdsRoom }.reduce(.zero) {
            $0 + $1.consignment.load
        }
    }

    public func consignments(ownedBy userID: String, page: PageRequest) -> Page<ConsignmentRecord> {
        let owned = records.enumerated().filter {
            $0.element.consignment.userID == userID && $0.element.status.isConsignment
        }
        let after = page.cursor.first.flatMap(Int.init) ?? -1
        let fetched = owned.filter { $0.offset > after }.prefix(page.size + 1)
        return Page(fetched: Array(fetched), size: page.size, bytes: \.element.consignment.approximateBytes) {
            [String($0.offset)]
        }.map(\.element)
    }

    /// Every record, for tests that check the store's invariant.
    public func all() -> [ConsignmentRecord] { records }
}

/// A `UserRepository` in memory, for unit tests only.
public actor InMemoryUserRepository: UserRepository {
    private var users: [(user: User, passwordHash: String)] = []
    /// The events stored with the users, in order.
    public private(set) var events: [OutboxEvent] = []
    /// The role changes, in order.
    public private(set) var roleChanges: [RoleChange] = []
    private struct Session {
        var family: UUID
        var userID: String
        var expiresAt: Date
        var spent = false
        var revoked = false
    }
    private var sessions: [[UInt8]: Session] = [:]

    public init() {}

    public func create(_ user: User, passwordHash: String, event: OutboxEvent) throws(ShippyError) {
        guard !users.contains(where: { $0.user.email.lowercased() == user.email.lowercased() }) else {
            throw .alreadyExists("a user with email \(user.email) already exists")
        }
        users.append((user, passwordHash))
        events.append(event)
    }

    public func user(id: String) -> User? {
        users.first { $0.user.id == id }?.user
    }

    public func record(_ event: OutboxEvent) { events.append(event) }

    public func credentials(email: String) -> (user: User, passwordHash: String)? {
        users.first { $0.user.email.lowercased() == email.lowercased() }
    }

    public func users(page: PageRequest) -> Page<User> {
        let after = page.cursor.first.flatMap(Int.init) ?? -1
        let fetched = users.indices.filter { $0 > after }.prefix(page.size + 1).map {
            (index: $0, user: users[$0].user)
        }
        return Page(fetched: fetched, size: page.size) { [String($0.index)] }.map(\.user)
    }

    public func change(_ change: RoleChange) -> User? {
        guard let index = users.firstIndex(where: { $0.user.email.lowercased() == change.email.lowercased() }) else {
            return nil
        }
        let others = users[index].user.roles.filter { $0 != change.role && $0 != .user }
        let roles = change.granted ? others + [change.role] : others
        users[index].user.roles = roles.isEmpty ? [.user] : roles
        roleChanges.append(change)
        return users[index].user
    }

    public func startSession(userID: String, tokenHash: [UInt8], expiresAt: Date) {
        sessions[tokenHash] = Session(family: UUID(), userID: userID, expiresAt: expiresAt)
    }

    public func rotateSession(tokenHash: [UInt8], to successor: [UInt8], expiresAt: Date) -> SessionRotation {
        guard let session = sessions[tokenHash], !session.revoked, session.expiresAt > Date(),
            let user = user(id: session.userID)
        else { return .invalid }
        guard !session.spent else {
            revoke { $0.family == session.family }
            return .reused
        }
        sessions[tokenHash]?.spent = true
        sessions[successor] = Session(family: session.family, userID: session.userID, expiresAt: expiresAt)
        return .rotated(user)
    }

    public func endSession(tokenHash: [UInt8]) -> Bool {
        guard let session = sessions[tokenHash] else { return false }
        return revoke { $0.family == session.family } > 0
    }

    public func endSessions(userID: String) -> Int { revoke { $0.userID == userID } }

    public func changePassword(userID: String, passwordHash: String) {
        guard let index = users.firstIndex(where: { $0.user.id == userID }) else { return }
        users[index].passwordHash = passwordHash
        revoke { $0.userID == userID }
    }

    /// Revokes the live, unspent logins' tokens that match; returns how many logins that ended.
    @discardableResult
    private func revoke(_ matching: (Session) -> Bool) -> Int {
        var ended: Set<UUID> = []
        for (hash, session) in sessions where matching(session) && !session.revoked {
            if !session.spent && session.expiresAt > Date() { ended.insert(session.family) }
            sessions[hash]?.revoked = true
        }
        return ended.count
    }
}

/// A `VesselRepository` in memory, for unit tests only.
public actor InMemoryVesselRepository: VesselRepository {
    private var vessels: [String: Vessel] = [:]
    private var bookings: [String: Booking] = [:]

    public init(_ vessels: [Vessel] = []) {
        for vessel in vessels { self.vessels[vessel.id] = vessel }
    }

    public func findAvailable(_ specification: VesselSpecification) -> Vessel? {
        vessels.values
            .filter { $0.canCarry(specification) }
            .min { ($0.capacity, $0.maxWeight, $0.id) < ($1.capacity, $1.maxWeight, $1.id) }
    }

    public func create(_ vessel: Vessel) throws(ShippyError) {
        guard vessels[vessel.id] == nil else { throw .alreadyExists("a vessel with id \(vessel.id) already exists") }
        vessels[vessel.id] = vessel
    }

    public func seedIfEmpty(_ fleet: [Vessel]) -> Int {
        guard vessels.isEmpty else { return 0 }
        for vessel in fleet { vessels[vessel.id] = vessel }
        return fleet.count
    }

    public func list(_ page: PageRequest) -> Page<Vessel> {
        let after = page.cursor.first ?? ""
        let sorted = vessels.values.filter { $0.id > after }.sorted { $0.id < $1.id }
        return Page(fetched: Array(sorted.prefix(page.size + 1)), size: page.size) { [$0.id] }
    }

    public func booking(consignmentID: String) -> Booking? {
        bookings[consignmentID]
    }

    public func book(_ request: BookingRequest, expiresAt: Int64) throws(ShippyError) -> Booking {
        if let existing = bookings[request.consignmentID] {
            guard try request.takesRoomAnew(from: existing) else { return existing }
        }
        guard var vessel = findAvailable(request.specification) else {
            throw .resourceExhausted("no vessel has room for \(request.specification)")
        }
        vessel.roomCapacity -= request.specification.capacity
        vessel.roomWeight -= request.specification.maxWeight
        vessels[vessel.id] = vessel
        let booking = Booking(
            consignmentID: request.consignmentID, vesselID: vessel.id, containers: request.specification.capacity,
            weight: request.specification.maxWeight, ownerID: request.ownerID, state: .reserved,
            expiresAtMilliseconds: expiresAt, attempt: request.attempt)
        bookings[request.consignmentID] = booking
        return booking
    }

    public func confirm(consignmentID: String, attempt: Int64) throws(ShippyError) -> Booking {
        guard var booking = bookings[consignmentID] else {
            throw .notFound("no booking for consignment \(consignmentID)")
        }
        guard booking.attempt == attempt, booking.state == .reserved || booking.state == .confirmed else {
            throw BookingErrors.notReserved(consignmentID)
        }
        booking.state = .confirmed
        booking.expiresAtMilliseconds = 0
        bookings[consignmentID] = booking
        return booking
    }

    public func release(consignmentID: String, attempt: Int64, ownerID: String) throws(ShippyError) -> Booking {
        guard var booking = bookings[consignmentID] else {
            guard attempt > 0 else { throw .notFound("no booking for consignment \(consignmentID)") }
            let tombstone = Booking.neverBooked(consignmentID: consignmentID, attempt: attempt, ownerID: ownerID)
            bookings[consignmentID] = tombstone
            return tombstone
        }
        guard booking.attempt <= attempt else { return booking }
        switch booking.state {
        case .confirmed:
            if booking.attempt == attempt { throw BookingErrors.confirmed(consignmentID) }
            return booking
        case .cancelled: return booking
        case .released: break
        case .reserved:
            booking.state = .released
            vessels[booking.vesselID]?.roomCapacity += booking.containers
            vessels[booking.vesselID]?.roomWeight += booking.weight
        }
        booking.attempt = attempt
        bookings[consignmentID] = booking
        return booking
    }

    public func cancel(consignmentID: String) throws(ShippyError) -> Booking {
        guard var booking = bookings[consignmentID] else {
            throw .notFound("no booking for consignment \(consignmentID)")
        }
        switch booking.state {
        case .cancelled: return booking
        case .confirmed:
            booking.state = .cancelled
            vessels[booking.vesselID]?.roomCapacity += booking.containers
            vessels[booking.vesselID]?.roomWeight += booking.weight
            bookings[consignmentID] = booking
            return booking
        case .reserved, .released: throw BookingErrors.notConfirmed(consignmentID)
        }
    }

    public func releaseExpired(now: Int64) throws(ShippyError) -> Int {
        let expired = bookings.values.filter { $0.state == .reserved && $0.expiresAtMilliseconds < now }
        for booking in expired {
            _ = try release(consignmentID: booking.consignmentID, attempt: booking.attempt, ownerID: booking.ownerID)
        }
        return expired.count
    }
}

extension OutboxEvent {
    /// An event for tests of a store, whose content does not matter to them.
    package static func sample(_ subject: String = "consignment.test") -> OutboxEvent {
        OutboxEvent(id: UUID(), subject: subject, payload: Array(subject.utf8))
    }
}
