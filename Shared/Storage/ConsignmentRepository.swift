import ShippyDomain

/// Where consignments are kept. Services depend on this protocol, never on a driver.
public protocol ConsignmentRepository: Sendable {
    /// Stores a booked consignment.
    /// - Throws: `ShippyError` `.alreadyExists` for an id in use, `.unavailable`.
    func create(_ consignment: Consignment) async throws(ShippyError)

    /// The consignment with this id, or `nil`.
    func consignment(id: String) async throws(ShippyError) -> Consignment?

    /// Deletes a consignment (undoing a store whose booking could not be confirmed); idempotent.
    func delete(id: String) async throws(ShippyError)

    /// The consignments owned by `userID`, oldest first, a page at a time.
    func consignments(ownedBy userID: String, page: PageRequest) async throws(ShippyError) -> Page<Consignment>
}

/// A `ConsignmentRepository` in memory, for unit tests only.
public actor InMemoryConsignmentRepository: ConsignmentRepository {
    private var consignments: [Consignment] = []
    /// Fails the next `create` calls with this error, for tests of what happens after a booking.
    private var failures: [ShippyError] = []

    public init() {}

    /// Makes the next `create` fail with `error`.
    public func failNextCreate(with error: ShippyError) {
        failures.append(error)
    }

    public func create(_ consignment: Consignment) throws(ShippyError) {
        if !failures.isEmpty { throw failures.removeFirst() }
        guard !consignments.contains(where: { $0.id == consignment.id }) else {
            throw .alreadyExists("a consignment with id \(consignment.id) already exists")
        }
        consignments.append(consignment)
    }

    public func consignment(id: String) -> Consignment? {
        consignments.first { $0.id == id }
    }

    public func delete(id: String) {
        consignments.removeAll { $0.id == id }
    }

    public func consignments(ownedBy userID: String, page: PageRequest) -> Page<Consignment> {
        let owned = consignments.enumerated().filter { $0.element.userID == userID }
        let after = page.cursor.first.flatMap(Int.init) ?? -1
        let fetched = owned.filter { $0.offset > after }.prefix(page.size + 1)
        return Page(fetched: Array(fetched), size: page.size) { [String($0.offset)] }.map(\.element)
    }
}
