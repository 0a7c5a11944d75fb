/// A ship that carries containers: how many (`capacity`) and how heavy in total (`maxWeight`, kg).
public struct Vessel: Sendable, Hashable {
    public var id: String
    public var name: String
    public var capacity: Int32
    public var maxWeight: Int32
    public var available: Bool
    public var ownerID: String
    /// Containers it can still take: `capacity` less what is booked.
    public var roomCapacity: Int32
    /// Kilograms it can still take: `maxWeight` less what is booked.
    public var roomWeight: Int32

    /// A vessel; with no `roomCapacity` or `roomWeight`, nothing is booked on it yet.
    public init(
        id: String,
        name: String,
        capacity: Int32,
        maxWeight: Int32,
        available: Bool = true,
        ownerID: String = "",
        roomCapacity: Int32? = nil,
        roomWeight: Int32? = nil
    ) {
        self.id = id
        self.name = name
        self.capacity = capacity
        self.maxWeight = maxWeight
        self.available = available
        self.ownerID = ownerID
        self.roomCapacity = roomCapacity ?? capacity
        self.roomWeight = roomWeight ?? maxWeight
    }

    /// Longest accepted id and name; longer input is a client error, not something to store.
    public static let maximumIDLength = 128
    public static let maximumNameLength = 200
    /// The characters of a vessel id (ASCII letters, digits, `.`, `_`, `-`), as the OpenAPI document states them
    /// (where an empty id, one vessel-service assigns, matches too).
    public static let idPattern = "^[A-Za-z0-9._-]*$"

    /// Checks the rules a new vessel must satisfy.
    /// - Throws: `ShippyError` `.invalidArgument` naming the first field that breaks a rule.
    public func validate() throws(ShippyError) {
        try TextRules.check(name, field: "vessel name", maximumLength: Self.maximumNameLength)
        try TextRules.check(id, field: "vessel id", maximumLength: Self.maximumIDLength)
        if !TextRules.isASCII(id, lettersDigitsAnd: "._-") {
            throw .invalidArgument("vessel id may hold only ASCII letters, digits, '.', '_' and '-'")
        }
        if capacity <= 0 {
            throw .invalidArgument("vessel capacity must be greater than 0 (got \(capacity))")
        }
        if maxWeight <= 0 {
            throw .invalidArgument("vessel max_weight must be greater than 0 (got \(maxWeight))")
        }
    }

    /// Whether this vessel has room left for a load of the given specification.
    public func canCarry(_ specification: VesselSpecification) -> Bool {
        available && roomCapacity >= specification.capacity && roomWeight >= specification.maxWeight
    }
}

/// What a load needs from a vessel: room for `capacity` containers weighing `maxWeight` kg in total.
public struct VesselSpecification: Sendable, Hashable, CustomStringConvertible {
    public var capacity: Int32
    public var maxWeight: Int32

    /// - Throws: `ShippyError` `.invalidArgument` when either value is negative.
    public init(capacity: Int32, maxWeight: Int32) throws(ShippyError) {
        guard capacity >= 0 else {
            throw .invalidArgument("specification capacity must not be negative (got \(capacity))")
        }
        guard maxWeight >= 0 else {
            throw .invalidArgument("specification max_weight must not be negative (got \(maxWeight))")
        }
        self.capacity = capacity
        self.maxWeight = maxWeight
    }

    public var description: String { "capacity \(capacity), max_weight \(maxWeight)" }
}

extension Vessel {
    /// The fleet a new installation starts with, smallest first. The sample consignment
    /// (3 containers, 55,000 kg) fits `vessel003` and the larger ones.
    public static let defaultFleet: [Vessel] = [
        Vessel(id: "vessel001", name: "Boaty McBoatface", capacity: 500, maxWeight: 200_000),
        Vessel(id: "vessel002", name: "Little Tug", capacity: 2, maxWeight: 10_000),
        Vessel(id: "vessel003", name: "Coastal Feeder", capacity: 12, maxWeight: 80_000),
        Vessel(id: "vessel004", name: "Baltic Trader", capacity: 60, maxWeight: 400_000),
        Vessel(id: "vessel005", name: "Ocean Panamax", capacity: 4_000, maxWeight: 50_000_000),
    ]
}
