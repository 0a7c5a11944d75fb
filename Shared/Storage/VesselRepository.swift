import ShippyDomain

/// Where vessels are kept. Services depend on this protocol, never on a driver.
public protocol VesselRepository: Sendable {
    /// The smallest available vessel that can carry the specification, or `nil` when none can.
    /// - Throws: `ShippyError` `.unavailable` when the store cannot be reached.
    func findAvailable(_ specification: VesselSpecification) async throws(ShippyError) -> Vessel?

    /// Stores a new vessel.
    /// - Throws: `ShippyError` `.alreadyExists` when a vessel with the same id exists, `.unavailable`.
    func create(_ vessel: Vessel) async throws(ShippyError)

    /// Stores `fleet` when the store holds no vessel at all; returns how many vessels it inserted.
    /// Safe to call from every replica at every start: fleet ids are fixed, so a concurrent seed
    /// inserts each vessel at most once.
    func seedIfEmpty(_ fleet: [Vessel]) async throws(ShippyError) -> Int
}

/// A `VesselRepository` in memory, for unit tests only.
public actor InMemoryVesselRepository: VesselRepository {
    private var vessels: [String: Vessel] = [:]

    public init(_ vessels: [Vessel] = []) {
        for vessel in vessels { self.vessels[vessel.id] = vessel }
    }

    public func findAvailable(_ specification: VesselSpecification) throws(ShippyError) -> Vessel? {
        vessels.values
            .filter { $0.canCarry(specification) }
            .min { ($0.capacity, $0.maxWeight, $0.id) < ($1.capacity, $1.maxWeight, $1.id) }
    }

    public func create(_ vessel: Vessel) throws(ShippyError) {
        guard vessels[vessel.id] == nil else { throw .alreadyExists("a vessel with id \(vessel.id) already exists") }
        vessels[vessel.id] = vessel
    }

    public func seedIfEmpty(_ fleet: [Vessel]) throws(ShippyError) -> Int {
        guard vessels.isEmpty else { return 0 }
        for vessel in fleet { vessels[vessel.id] = vessel }
        return fleet.count
    }
}
