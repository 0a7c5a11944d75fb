/// Room on a vessel held for one consignment: reserved by `Book`, made final by `Confirm`, given back by
/// `Release` or, for a reservation never confirmed, by the sweep once it expires; a confirmed one is given back
/// only by `Cancel`, when its consignment is cancelled.
public struct Booking: Sendable, Hashable {
    public enum State: String, Sendable, Hashable {
        /// The room is taken, until `expiresAt` unless confirmed.
        case reserved
        /// The consignment is stored; the room is never given back by the sweep.
        case confirmed
        /// The room was given back.
        case released
        /// It was confirmed, then its consignment was cancelled: the room was given back, and the consignment id
        /// never takes room again.
        case cancelled
    }

    public var consignmentID: String
    public var vesselID: String
    public var containers: Int32
    public var weight: Int32
    /// The user whose token booked it; only they (or an admin) confirm or release it.
    public var ownerID: String
    public var state: State
    /// When an unconfirmed reservation lapses, in milliseconds since 1970; 0 once confirmed.
    public var expiresAtMilliseconds: Int64
    /// The attempt at booking the consignment that holds this booking (0: a client that predates attempts).
    public var attempt: Int64

    public init(
        consignmentID: String,
        vesselID: String,
        containers: Int32,
        weight: Int32,
        ownerID: String,
        state: State,
        expiresAtMilliseconds: Int64,
        attempt: Int64 = 0
    ) {
        self.consignmentID = consignmentID
        self.vesselID = vesselID
        self.containers = containers
        self.weight = weight
        self.ownerID = ownerID
        self.state = state
        self.expiresAtMilliseconds = expiresAtMilliseconds
        self.attempt = attempt
    }
}

/// A request for room: for one consignment, by one user.
public struct BookingRequest: Sendable, Hashable {
    public var consignmentID: String
    public var specification: VesselSpecification
    public var ownerID: String
    /// Which attempt at booking the consignment this is: 1, 2, … (0: a client that predates attempts).
    /// Only the latest attempt may take room, and an attempt released once never takes it.
    public var attempt: Int64

    public static let maximumIDLength = 128

    /// - Throws: `ShippyError` `.invalidArgument` for an empty or over-long id, a negative attempt, or a load
    ///   of no containers or no weight.
    public init(
        consignmentID: String, specification: VesselSpecification, ownerID: String, attempt: Int64 = 0
    ) throws(ShippyError) {
        try TextRules.check(consignmentID, field: "consignment_id", maximumLength: Self.maximumIDLength)
        guard specification.capacity > 0 else { throw .invalidArgument("containers must be greater than 0") }
        guard specification.maxWeight > 0 else { throw .invalidArgument("weight must be greater than 0") }
        guard attempt >= 0 else { throw .invalidArgument("attempt must not be negative") }
        self.consignmentID = consignmentID
        self.specification = specification
        self.ownerID = ownerID
        self.attempt = attempt
    }
}
