/// A container in a consignment: whose goods (`customerID`) and where they come from.
public struct Container: Sendable, Hashable {
    public var id: String
    public var customerID: String
    public var origin: String
    /// The consignment's owner; the server sets it.
    public var userID: String

    public init(id: String = "", customerID: String, origin: String, userID: String = "") {
        self.id = id
        self.customerID = customerID
        self.origin = origin
        self.userID = userID
    }
}

/// Containers booked together on one vessel, owned by the user who created them.
public struct Consignment: Sendable, Hashable {
    public var id: String
    public var description: String
    /// Total weight in kg.
    public var weight: Int32
    public var containers: [Container]
    public var vesselID: String
    public var userID: String

    public init(
        id: String = "",
        description: String,
        weight: Int32,
        containers: [Container],
        vesselID: String = "",
        userID: String = ""
    ) {
        self.id = id
        self.description = description
        self.weight = weight
        self.containers = containers
        self.vesselID = vesselID
        self.userID = userID
    }

    /// At most this many containers per consignment: larger loads are split by the shipper.
    public static let maximumContainers = 1_000
    public static let maximumDescriptionLength = 1_000
    /// Customer ids and origins.
    public static let maximumFieldLength = 200
    /// The most a loaded container may weigh, in kg: the maximum gross mass of a 40-foot ISO container
    /// (ISO 668). A consignment weighs at most this per container; more is a typo or an attempt to take a
    /// vessel's room without cargo.
    public static let maximumGrossMassPerContainer: Int32 = 30_480
    /// The heaviest consignment there can be: every container at its maximum gross mass.
    public static let maximumWeight = Int32(maximumContainers) * maximumGrossMassPerContainer

    /// Checks the rules of a new consignment.
    /// - Throws: `ShippyError` `.invalidArgument` naming the first field that breaks a rule.
    public func validate() throws(ShippyError) {
        try TextRules.check(description, field: "description", maximumLength: Self.maximumDescriptionLength)
        if weight <= 0 { throw .invalidArgument("weight must be greater than 0 (got \(weight))") }
        if containers.isEmpty { throw .invalidArgument("a consignment needs at least one container") }
        if containers.count > Self.maximumContainers {
            throw .invalidArgument(
                "a consignment holds at most \(Self.maximumContainers) containers (got \(containers.count))")
        }
        let heaviest = Int32(containers.count) * Self.maximumGrossMassPerContainer
        if weight > heaviest {
            throw .invalidArgument(
                "weight must be at most \(Self.maximumGrossMassPerContainer) kg per container (an ISO container's "
                    + "maximum gross mass), so at most \(heaviest) kg for \(containers.count) (got \(weight))")
        }
        for (index, container) in containers.enumerated() {
            try TextRules.check(
                container.customerID, field: "containers[\(index)].customer_id", maximumLength: Self.maximumFieldLength)
            try TextRules.check(
                container.origin, field: "containers[\(index)].origin", maximumLength: Self.maximumFieldLength)
            try TextRules.check(
                container.id, field: "containers[\(index)].id", maximumLength: Self.maximumFieldLength, required: false)
        }
    }

    /// About the bytes it takes in an answer (its text, and a little for each field's framing): what bounds a
    /// page of consignments.
    public var approximateBytes: Int {
        let text = [id, description, vesselID, userID].reduce(0) { $0 + $1.utf8.count }
        return containers.reduce(text + 32) { total, container in
            total + 16
                + [container.id, container.customerID, container.origin, container.userID].reduce(0) {
                    $0 + $1.utf8.count
                }
        }
    }

    /// What the consignment needs from a vessel: a slot per container, and its weight.
    public var specification: VesselSpecification {
        get throws(ShippyError) {
            try VesselSpecification(capacity: Int32(clamping: containers.count), maxWeight: weight)
        }
    }

    /// The consignment as stored: a new id, the vessel that takes it, and `owner` on it and every container,
    /// whatever the client sent.
    public func booked(id: String, vesselID: String, owner: String) -> Consignment {
        var booked = self
        booked.id = id
        booked.vesselID = vesselID
        booked.userID = owner
        for index in booked.containers.indices { booked.containers[index].userID = owner }
        return booked
    }
}

/// Whom a user's mail goes to: their address and name.
public struct Contact: Sendable, Hashable {
    public var email: String
    public var name: String

    public init(email: String = "", name: String = "") {
        self.email = email
        self.name = name
    }
}

/// A consignment as the booking protocol stores it: the consignment, the attempt at booking it, and where that
/// attempt stands. Only a booked record is a consignment its owner sees; see `ConsignmentBooking`.
public struct ConsignmentRecord: Sendable, Hashable {
    public enum Status: String, Sendable, Hashable, CaseIterable {
        /// An attempt is under way: room may be reserved, nothing is promised. Not listed.
        case pending
        /// Its room is confirmed on `consignment.vesselID`. Listed; never given back by a sweep.
        case booked
        /// The attempt ended without room (refused, expired or given up); the next attempt may start. Not listed.
        case abandoned
        /// Its owner or an admin asked to cancel it; its room is being given back (recovery finishes it after a
        /// crash). Listed; it holds its room until `cancelled`.
        case cancelling
        /// Cancelled: its room was given back. Listed, for its owner's history; never booked again.
        case cancelled

        /// Whether the record is a consignment its owner sees (booked, or cancelled or being cancelled after it).
        public var isConsignment: Bool { self == .booked || self == .cancelling || self == .cancelled }
        /// Whether the record holds, or may yet hold, room on a vessel: what a quota counts.
        public var holdsRoom: Bool { self == .pending || self == .booked || self == .cancelling }
        /// Whether a step is under way (an attempt, or a cancel) that a retry or recovery finishes.
        public var isUnsettled: Bool { self == .pending || self == .cancelling }
    }

    public var consignment: Consignment
    public var status: Status
    /// 1 for the first attempt at booking this id, then 2, 3, … after abandoned ones.
    public var attempt: Int64
    /// While pending or cancelling: the token of the user whose call started the step, so that whoever finishes it
    /// (their retry, or recovery after a crash) calls vessel-service on their behalf. Cleared once settled.
    public var credential: String
    /// When the attempt, or the cancel, started, in milliseconds since 1970.
    public var startedAtMilliseconds: Int64
    /// Who cancelled it (the owner, or an admin's user id): set with `cancelling`, kept as the audit of a forced cancel.
    public var cancelledBy: String
    /// Where the owner is told of its events (booked, cancelled): the address and name of the token that booked it,
    /// kept so that whoever finishes a step (recovery included) can write its event. Empty for records stored before.
    public var contact: Contact

    public init(
        consignment: Consignment, status: Status, attempt: Int64, credential: String, startedAtMilliseconds: Int64,
        cancelledBy: String = "", contact: Contact = Contact()
    ) {
        self.consignment = consignment
        self.status = status
        self.attempt = attempt
        self.credential = credential
        self.startedAtMilliseconds = startedAtMilliseconds
        self.cancelledBy = cancelledBy
        self.contact = contact
    }

    public var id: String { consignment.id }
}
