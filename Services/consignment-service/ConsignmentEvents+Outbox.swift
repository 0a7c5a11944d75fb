import ShippyContracts
import ShippyDomain
import ShippyMessaging
import ShippyRuntime
import ShippyStorage

/// The events a record's changes store in its outbox (docs/bookings.md, "Events"): each with a new id (its NATS
/// message id), the owner's contact kept since the booking began, and the trace context of the call (or the
/// recovery pass) that made the change.
extension ConsignmentRecord {
    /// `consignment.booked`, for this record booked on `vesselID`.
    func bookedEvent(vesselID: String, at now: Int64) throws(ShippyError) -> OutboxEvent {
        try encoded {
            try .new(ConsignmentEvents.booked) { eventID in
                try Shippy_Events_ConsignmentBooked.with {
                    $0.eventID = eventID
                    $0.consignmentID = id
                    $0.userID = consignment.userID
                    $0.email = contact.email
                    $0.name = contact.name
                    $0.vesselID = vesselID
                    $0.description_p = consignment.description
                    $0.weight = consignment.weight
                    $0.containers = Int32(consignment.containers.count)
                    $0.bookedAtUnixMs = now
                }.serializedBytes()
            }
        }
    }

    /// `consignment.cancelled`, for this record (cancelling) as it becomes cancelled.
    func cancelledEvent(at now: Int64) throws(ShippyError) -> OutboxEvent {
        try encoded {
            try .new(ConsignmentEvents.cancelled) { eventID in
                try Shippy_Events_ConsignmentCancelled.with {
                    $0.eventID = eventID
                    $0.consignmentID = id
                    $0.userID = consignment.userID
                    $0.email = contact.email
                    $0.name = contact.name
                    $0.vesselID = consignment.vesselID
                    $0.cancelledBy = cancelledBy
                    $0.forced = !cancelledBy.isEmpty && cancelledBy != consignment.userID
                    $0.cancelledAtUnixMs = now
                }.serializedBytes()
            }
        }
    }

    /// Encoding a message of strings and numbers does not fail; should it, the step fails and is retried.
    private func encoded(_ build: () throws -> OutboxEvent) throws(ShippyError) -> OutboxEvent {
        do { return try build() } catch { throw ShippyError(.internal, "an event could not be encoded: \(error)") }
    }
}
