import ShippyDomain

/// Where vessels and their bookings are kept. Services depend on this protocol, never on a driver.
///
/// Every change to a vessel's room is one atomic conditional update, so that any number of replicas
/// booking at once can never overbook; see `MongoVesselRepository` for the protocol.
public protocol VesselRepository: Sendable {
    /// The smallest available vessel with room left for the specification, or `nil` when none has. Reads only.
    /// - Throws: `ShippyError` `.unavailable` when the store cannot be reached.
    func findAvailable(_ specification: VesselSpecification) async throws(ShippyError) -> Vessel?

    /// Stores a new vessel, with all its room free.
    /// - Throws: `ShippyError` `.alreadyExists` when a vessel with the same id exists, `.unavailable`.
    func create(_ vessel: Vessel) async throws(ShippyError)

    /// Stores `fleet` when the store holds no vessel at all; returns how many vessels it inserted.
    /// Safe to call from every replica at every start: fleet ids are fixed, so a concurrent seed
    /// inserts each vessel at most once.
    func seedIfEmpty(_ fleet: [Vessel]) async throws(ShippyError) -> Int

    /// The fleet in id order, a page at a time.
    func list(_ page: PageRequest) async throws(ShippyError) -> Page<Vessel>

    /// The booking of a consignment, in whatever state, or `nil`.
    func booking(consignmentID: String) async throws(ShippyError) -> Booking?

    /// Reserves room for the consignment on the smallest vessel that has it, until `expiresAt` (ms since
    /// 1970) unless confirmed. Idempotent by consignment id: a booking that exists is answered as it is.
    /// - Throws: `.resourceExhausted` when no vessel has room, `.permissionDenied` when another user booked
    ///   this consignment id, `.unavailable` (also while another call books the same id: retry).
    func book(_ request: BookingRequest, expiresAt: Int64) async throws(ShippyError) -> Booking

    /// Makes a reservation final: the sweep never releases it. Idempotent.
    /// - Throws: `.notFound`, `.failedPrecondition` when the reservation expired or was released.
    func confirm(consignmentID: String) async throws(ShippyError) -> Booking

    /// Gives a reservation's room back. Idempotent.
    /// - Throws: `.notFound`, `.failedPrecondition` when the booking is confirmed.
    func release(consignmentID: String) async throws(ShippyError) -> Booking

    /// Releases the reservations that expired before `now` (ms since 1970) and finishes releases that a
    /// crash interrupted; returns how many bookings it released.
    func releaseExpired(now: Int64) async throws(ShippyError) -> Int
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
        if let existing = bookings[request.consignmentID], existing.state != .released {
            guard existing.ownerID == request.ownerID else {
                throw .permissionDenied("consignment \(request.consignmentID) is booked by another user")
            }
            return existing
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
            expiresAtMilliseconds: expiresAt)
        bookings[request.consignmentID] = booking
        return booking
    }

    public func confirm(consignmentID: String) throws(ShippyError) -> Booking {
        guard var booking = bookings[consignmentID] else {
            throw .notFound("no booking for consignment \(consignmentID)")
        }
        guard booking.state != .released else { throw BookingErrors.notReserved(consignmentID) }
        booking.state = .confirmed
        booking.expiresAtMilliseconds = 0
        bookings[consignmentID] = booking
        return booking
    }

    public func release(consignmentID: String) throws(ShippyError) -> Booking {
        guard var booking = bookings[consignmentID] else {
            throw .notFound("no booking for consignment \(consignmentID)")
        }
        switch booking.state {
        case .confirmed: throw BookingErrors.confirmed(consignmentID)
        case .released: return booking
        case .reserved:
            booking.state = .released
            bookings[consignmentID] = booking
            vessels[booking.vesselID]?.roomCapacity += booking.containers
            vessels[booking.vesselID]?.roomWeight += booking.weight
            return booking
        }
    }

    public func releaseExpired(now: Int64) throws(ShippyError) -> Int {
        let expired = bookings.values.filter { $0.state == .reserved && $0.expiresAtMilliseconds < now }
        for booking in expired { _ = try release(consignmentID: booking.consignmentID) }
        return expired.count
    }
}

/// The messages of booking errors, the same for every implementation.
public enum BookingErrors {
    public static func notReserved(_ consignmentID: String) -> ShippyError {
        ShippyError(
            .failedPrecondition, "the reservation for consignment \(consignmentID) expired or was released; book again")
    }

    public static func confirmed(_ consignmentID: String) -> ShippyError {
        ShippyError(
            .failedPrecondition, "the booking for consignment \(consignmentID) is confirmed and cannot be released")
    }
}
