import ShippyDomain

/// Where consignments are kept, as records of the booking protocol (`ConsignmentRecord`). Services depend on
/// this protocol, never on a driver. Every change of a record is conditional on its attempt and status, so that
/// the call that books, a retry with the same key and recovery in any replica can race safely. The changes that
/// announce themselves (booked, cancelled) store their event in the same atomic write: the store is the outbox.
public protocol ConsignmentRepository: EventOutbox {
    /// Starts an attempt at booking `consignment` (id and owner set): attempt 1 for a new id, the next one after
    /// an abandoned attempt. When the id's record is pending or booked, it is answered as it is, not started.
    /// `contact` is kept for the owner's mails.
    /// - Returns: the record, and whether this call started its attempt.
    /// - Throws: `ShippyError` `.unavailable`.
    func begin(
        _ consignment: Consignment, contact: Contact, credential: String, now: Int64
    ) async throws(ShippyError) -> (record: ConsignmentRecord, started: Bool)

    /// The record with this id, or `nil`.
    func record(id: String) async throws(ShippyError) -> ConsignmentRecord?

    /// Marks `attempt` booked on `vesselID` (its room is confirmed), storing `event` to publish in the same write.
    /// Idempotent: only the call that changes the record stores its event.
    /// - Returns: the booked record, or `nil` when the attempt is no longer this record's or was abandoned.
    func markBooked(
        id: String, attempt: Int64, vesselID: String, event: OutboxEvent
    ) async throws(ShippyError) -> ConsignmentRecord?

    /// Marks `attempt` abandoned, when it is still pending. Idempotent.
    func markAbandoned(id: String, attempt: Int64) async throws(ShippyError)

    /// Marks a booked record `cancelling`, by `cancelledBy` (a user id), with the token that vessel-service's
    /// `Cancel` is to be called with and the time the cancel started.
    /// - Returns: the record, when this call marked it; `nil` when it was not booked (already cancelling or
    ///   cancelled, or not a consignment).
    func markCancelling(
        id: String, cancelledBy: String, credential: String, now: Int64
    ) async throws(ShippyError) -> ConsignmentRecord?

    /// Marks a cancelling record `cancelled` (its room was given back), storing `event` in the same write.
    /// Idempotent: only the call that changes the record stores its event.
    func markCancelled(id: String, event: OutboxEvent) async throws(ShippyError)

    /// Records whose step is unfinished (pending, or cancelling) and began before `startedBefore` (ms since 1970),
    /// oldest first.
    func unsettled(startedBefore: Int64, limit: Int) async throws(ShippyError) -> [ConsignmentRecord]

    /// The room that `userID`'s records hold or may yet hold (`Status.holdsRoom`): what a user's quota counts.
    func held(by userID: String) async throws(ShippyError) -> Load

    /// The consignments owned by `userID` (`Status.isConsignment`: booked, cancelling, cancelled), oldest first,
    /// a page at a time.
    func consignments(ownedBy userID: String, page: PageRequest) async throws(ShippyError) -> Page<ConsignmentRecord>
}
