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

    /// Makes the reservation of `attempt` final: the sweep never releases it. Idempotent.
    /// - Throws: `.notFound` when nothing was booked for the id, `.failedPrecondition` when the reservation
    ///   expired, was released, or belongs to another attempt.
    func confirm(consignmentID: String, attempt: Int64) async throws(ShippyError) -> Booking

    /// Makes sure `attempt` holds no room and never will: releases its reservation or, when it never booked
    /// (attempts from 1), records it released for `ownerID`, so that its `book` arriving late takes none.
    /// Idempotent.
    /// - Throws: `.notFound` (attempt 0, nothing booked), `.failedPrecondition` when its booking is confirmed.
    func release(consignmentID: String, attempt: Int64, ownerID: String) async throws(ShippyError) -> Booking

    /// Cancels the confirmed booking of a consignment that was cancelled: its state becomes `cancelled` and its
    /// room goes back to its vessel, once. Idempotent: a cancelled booking is answered as it is (and a give-back
    /// that a crash interrupted is finished).
    /// - Throws: `.notFound` (nothing booked for the id), `.failedPrecondition` when the booking is not confirmed.
    func cancel(consignmentID: String) async throws(ShippyError) -> Booking

    /// Releases the reservations that expired before `now` (ms since 1970) and finishes releases and cancels that a
    /// crash interrupted; returns how many bookings it released.
    func releaseExpired(now: Int64) async throws(ShippyError) -> Int
}

extension BookingRequest {
    /// Whether this request takes room anew from the booking that exists for its consignment id (one that was
    /// released, for a later attempt), or is answered with that booking (`false`): the rule of every
    /// implementation.
    /// - Throws: `.permissionDenied` (another user's booking), `.failedPrecondition` when a later attempt
    ///   superseded this one, or an earlier attempt still holds the room.
    public func takesRoomAnew(from existing: Booking) throws(ShippyError) -> Bool {
        guard existing.ownerID == ownerID else {
            throw .permissionDenied("consignment \(consignmentID) is booked by another user")
        }
        guard existing.state != .cancelled else { throw BookingErrors.cancelled(consignmentID) }
        guard existing.attempt <= attempt else { throw BookingErrors.superseded(consignmentID, attempt: attempt) }
        // Attempt 0 is a client that predates attempts: it books again after a release, as it always did.
        if existing.state == .released { return existing.attempt < attempt || attempt == 0 }
        guard existing.attempt == attempt else {
            throw ShippyError(
                .failedPrecondition, "an earlier attempt holds the booking of consignment \(consignmentID)")
        }
        return false
    }
}

extension Booking {
    /// The record of an attempt released before it booked: it holds no room, and its `book` takes none.
    public static func neverBooked(consignmentID: String, attempt: Int64, ownerID: String) -> Booking {
        Booking(
            consignmentID: consignmentID, vesselID: "", containers: 0, weight: 0, ownerID: ownerID, state: .released,
            expiresAtMilliseconds: 0, attempt: attempt)
    }
}

/// The messages of booking errors, the same for every implementation.
public enum BookingErrors {
    public static func superseded(_ consignmentID: String, attempt: Int64) -> ShippyError {
        ShippyError(
            .failedPrecondition, "attempt \(attempt) at booking consignment \(consignmentID) was superseded or released"
        )
    }

    public static func notReserved(_ consignmentID: String) -> ShippyError {
        ShippyError(
            .failedPrecondition, "the reservation for consignment \(consignmentID) expired or was released; book again")
    }

    public static func cancelled(_ consignmentID: String) -> ShippyError {
        ShippyError(.failedPrecondition, "consignment \(consignmentID) was cancelled; it takes no room again")
    }

    public static func notConfirmed(_ consignmentID: String) -> ShippyError {
        ShippyError(
            .failedPrecondition,
            "the booking for consignment \(consignmentID) is not confirmed, so it cannot be cancelled")
    }

    public static func confirmed(_ consignmentID: String) -> ShippyError {
        ShippyError(
            .failedPrecondition, "the booking for consignment \(consignmentID) is confirmed and cannot be released")
    }
}
