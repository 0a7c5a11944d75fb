import ShippyDomain

/// The vessel-booking port of consignment-service's booking use case: room on vessels for consignments, by
/// consignment id and attempt. Its gRPC implementation asks vessel-service; every call carries the user's token
/// (`credential`), so vessel-service checks who books, confirms and releases.
public protocol VesselBooker: Sendable {
    /// Reserves room for the attempt; idempotent by consignment id and attempt. An attempt that was released
    /// is answered as `released` and takes no room.
    /// - Throws: `ShippyError`: `.resourceExhausted` (no vessel has room, with vessel-service's message),
    ///   `.failedPrecondition` (a later attempt superseded this one), `.unavailable` or `.deadlineExceeded`
    ///   naming vessel-service (the outcome is unknown), `.invalidArgument`, `.permissionDenied`.
    func book(
        consignmentID: String, attempt: Int64, specification: VesselSpecification, credential: String
    ) async throws(ShippyError) -> Booking

    /// Makes the attempt's reservation final. Idempotent.
    /// - Throws: `ShippyError` `.notFound` (the attempt never booked), `.failedPrecondition` when it expired or
    ///   was released, `.unavailable` (the outcome is unknown), ….
    func confirm(consignmentID: String, attempt: Int64, credential: String) async throws(ShippyError) -> Booking

    /// Makes sure the attempt holds no room and never will. Idempotent.
    /// - Throws: `ShippyError` `.failedPrecondition` when the attempt's booking is confirmed, `.unavailable`, ….
    func release(consignmentID: String, attempt: Int64, credential: String) async throws(ShippyError)

    /// Cancels the confirmed booking of a cancelled consignment, giving its room back. Idempotent.
    /// - Throws: `ShippyError` `.notFound` (nothing booked), `.failedPrecondition` (not confirmed),
    ///   `.unavailable` (the outcome is unknown), ….
    func cancel(consignmentID: String, credential: String) async throws(ShippyError) -> Booking
}
