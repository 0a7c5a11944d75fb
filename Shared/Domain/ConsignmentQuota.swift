/// Room on vessels: containers and kilograms, as consignments hold it.
public struct Load: Sendable, Hashable {
    public var containers: Int
    public var weight: Int

    public init(containers: Int, weight: Int) {
        self.containers = containers
        self.weight = weight
    }

    public static let zero = Load(containers: 0, weight: 0)

    public static func + (lhs: Load, rhs: Load) -> Load {
        Load(containers: lhs.containers + rhs.containers, weight: lhs.weight + rhs.weight)
    }
}

extension Consignment {
    /// The room it holds once booked.
    public var load: Load { Load(containers: containers.count, weight: Int(weight)) }
}

/// Fair use of the fleet: the most room one user's open consignments (being booked, booked, or being cancelled) may
/// hold at once, so that no account can take every vessel's room.
public struct ConsignmentQuota: Sendable, Hashable {
    public var limit: Load

    public init(containers: Int, weight: Int) {
        limit = Load(containers: containers, weight: weight)
    }

    /// The default: a fifth of the default fleet's containers, and of its largest vessel's weight.
    public static let standard = ConsignmentQuota(containers: 1_000, weight: 10_000_000)

    /// Checks that `adding` fits beside what the user's open consignments `held`, which counts `adding` itself
    /// when it is already stored.
    /// - Throws: `ShippyError` `.resourceExhausted` saying what is held, what the quota is and what to do.
    public func check(held: Load, adding: Load) throws(ShippyError) {
        guard held.containers > limit.containers || held.weight > limit.weight else { return }
        let before = Load(containers: held.containers - adding.containers, weight: held.weight - adding.weight)
        throw .resourceExhausted(
            "this consignment (\(adding.containers) containers, \(adding.weight) kg) does not fit your quota: your "
                + "open consignments hold \(before.containers) of \(limit.containers) containers and "
                + "\(before.weight) of \(limit.weight) kg; ship less, or ask an admin to raise the quota")
    }
}
