import ShippyDomain

/// Where consignments are kept, as records of the booking protocol (`ConsignmentRecord`). Services depend on
/// this protocol, never on a driver. Every change of a record is conditional on its attempt and status, so that
/// the call that books, a retry with the same key and recovery in any replica can race safely.
public protocol ConsignmentRepository: Sendable {
    /// Starts an attempt at booking `consignment` (id and owner set): attempt 1 for a new id, the next one after
    /// an abandoned attempt. When the id's record is pending or booked, it is answered as it is, not started.
    /// - Returns: the record, and whether this call started its attempt.
    /// - Throws: `ShippyError` `.unavailable`.
    func begin(
        _ consignment: Consignment, credential: String, now: Int64
    ) async throws(ShippyError) -> (record: ConsignmentRecord, started: Bool)

    /// The record with this id, or `nil`.
    func record(id: String) async throws(ShippyError) -> ConsignmentRecord?

    /// Marks `attempt` booked on `vesselID` (its room is confirmed). Idempotent.
    /// - Returns: the booked record, or `nil` when the attempt is no longer this record's or was abandoned.
    func markBooked(id: String, attempt: Int64, vesselID: String) async throws(ShippyError) -> ConsignmentRecord?

    /// Marks `attempt` abandoned, when it is still pending. Idempotent.
    func markAbandoned(id: String, attempt: Int64) async throws(ShippyError)

    /// Pending records whose attempt started before `startedBefore` (ms since 1970), oldest first.
    func pending(startedBefore: Int64, limit: Int) async throws(ShippyError) -> [ConsignmentRecord]

    /// The booked consignments owned by `userID`, oldest first, a page at a time.
    func consignments(ownedBy userID: String, page: PageRequest) async throws(ShippyError) -> Page<Consignment>
}

/// A `ConsignmentRepository` in memory, for unit tests only.
public actor InMemoryConsignmentRepository: ConsignmentRepository {
    /// In the order attempts began, as a store's creation order.
    private var records: [ConsignmentRecord] = []

    public init() {}

    public func begin(
        _ consignment: Consignment, credential: String, now: Int64
    ) -> (record: ConsignmentRecord, started: Bool) {
        let index = records.firstIndex { $0.id == consignment.id }
        if let index, records[index].status != .abandoned { return (records[index], false) }
        let record = ConsignmentRecord(
            consignment: consignment, status: .pending, attempt: index.map { records[$0].attempt + 1 } ?? 1,
            credential: credential, startedAtMilliseconds: now)
        if let index { records[index] = record } else { records.append(record) }
        return (record, true)
    }

    public func record(id: String) -> ConsignmentRecord? {
        records.first { $0.id == id }
    }

    public func markBooked(id: String, attempt: Int64, vesselID: String) -> ConsignmentRecord? {
        guard let index = records.firstIndex(where: { $0.id == id && $0.attempt == attempt }) else { return nil }
        switch records[index].status {
        case .abandoned: return nil
        case .booked: return records[index]
        case .pending:
            records[index].status = .booked
            records[index].consignment.vesselID = vesselID
            records[index].credential = ""
            return records[index]
        }
    }

    public func markAbandoned(id: String, attempt: Int64) {
        guard let index = records.firstIndex(where: { $0.id == id && $0.attempt == attempt && $0.status == .pending })
        else { return }
        records[index].status = .abandoned
        records[index].credential = ""
    }

    public func pending(startedBefore: Int64, limit: Int) -> [ConsignmentRecord] {
        Array(
            records.filter { $0.status == .pending && $0.startedAtMilliseconds < startedBefore }
                .sorted { $0.startedAtMilliseconds < $1.startedAtMilliseconds }.prefix(limit))
    }

    public func consignments(ownedBy userID: String, page: PageRequest) -> Page<Consignment> {
        let owned = records.enumerated().filter {
            $0.element.consignment.userID == userID && $0.element.status == .booked
        }
        let after = page.cursor.first.flatMap(Int.init) ?? -1
        let fetched = owned.filter { $0.offset > after }.prefix(page.size + 1)
        return Page(fetched: Array(fetched), size: page.size) { [String($0.offset)] }.map(\.element.consignment)
    }

    /// Every record, for tests that check the store's invariant.
    public func all() -> [ConsignmentRecord] { records }
}
