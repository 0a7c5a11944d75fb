import ShippyDomain

/// Where consignments are kept. Services depend on this protocol, never on a driver.
public protocol ConsignmentRepository: Sendable {
    /// Stores a booked consignment.
    /// - Throws: `ShippyError` `.alreadyExists` for an id in use, `.unavailable`.
    func create(_ consignment: Consignment) async throws(ShippyError)

    /// The consignments owned by `userID`, oldest first.
    func consignments(ownedBy userID: String) async throws(ShippyError) -> [Consignment]
}

/// A `ConsignmentRepository` in memory, for unit tests only.
public actor InMemoryConsignmentRepository: ConsignmentRepository {
    private var consignments: [Consignment] = []

    public init() {}

    public func create(_ consignment: Consignment) throws(ShippyError) {
        guard !consignments.contains(where: { $0.id == consignment.id }) else {
            throw .alreadyExists("a consignment with id \(consignment.id) already exists")
        }
        consignments.append(consignment)
    }

    public func consignments(ownedBy userID: String) -> [Consignment] {
        consignments.filter { $0.userID == userID }
    }
}
