import Foundation
import ShippyDomain
import ShippyStorage

/// Consignments in the MongoDB collection `consignments`, one document each with its containers embedded, and
/// the booking protocol's fields: `status`, `attempt`, `credential` (while pending or cancelling), `started_at` and
/// `cancelled_by`.
public struct MongoConsignmentRepository: ConsignmentRepository {
    public static let collection = "consignments"
    private let client: MongoClient

    public init(client: MongoClient) {
        self.client = client
    }

    /// Creates the indexes that list a user's consignments and find stalled attempts and cancels, and marks consignments
    /// stored before the booking protocol had states as booked. Idempotent.
    public func prepare() async throws(ShippyError) {
        try await client.createIndexes(
            [
                .init(name: "user_id_seq", keys: ["user_id": .int32(1), "seq": .int32(1)]),
                .init(name: "status_started_at", keys: ["status": .int32(1), "started_at": .int32(1)]),
            ], on: Self.collection)
        try await client.updateMany(
            in: Self.collection, filter: ["status": ["$exists": .bool(false)]],
            update: ["$set": ["status": "booked", "attempt": .int64(0), "credential": "", "started_at": .int64(0)]])
    }

    public func begin(
        _ consignment: Consignment, credential: String, now: Int64
    ) async throws(ShippyError) -> (record: ConsignmentRecord, started: Bool) {
        var record = ConsignmentRecord(
            consignment: consignment, status: .pending, attempt: 1, credential: credential, startedAtMilliseconds: now)
        // Each round either starts an attempt or reads a record that a racing call changed: a few rounds settle it.
        for _ in 0..<5 {
            do {
                try await client.insertOne(BSONFields(record), into: Self.collection)
                return (record, true)
            } catch  where error.code == .alreadyExists {
                guard let existing = try await self.record(id: consignment.id) else { continue }
                guard existing.status == .abandoned else { return (existing, false) }
                record.attempt = existing.attempt + 1
                let next = BSONFields(record).fields.filter { $0.key != "_id" }
                let started = try await client.updateOne(
                    in: Self.collection,
                    filter: ["_id": .string(record.id), "status": "abandoned", "attempt": .int64(existing.attempt)],
                    update: ["$set": .document(BSONFields(next))])
                if started == 1 { return (record, true) }
            }
        }
        throw .unavailable("consignment \(consignment.id) is being booked by other calls; retry")
    }

    public func record(id: String) async throws(ShippyError) -> ConsignmentRecord? {
        try await client.find(in: Self.collection, filter: ["_id": .string(id)], limit: 1).first
            .map { document throws(ShippyError) in try ConsignmentRecord(document) }
    }

    public func markBooked(
        id: String, attempt: Int64, vesselID: String
    ) async throws(ShippyError) -> ConsignmentRecord? {
        if let document = try await client.findOneAndUpdate(
            in: Self.collection, filter: ["_id": .string(id), "attempt": .int64(attempt), "status": "pending"],
            update: ["$set": ["status": "booked", "vessel_id": .string(vesselID), "credential": ""]])
        {
            return try ConsignmentRecord(document)
        }
        guard let existing = try await record(id: id), existing.attempt == attempt, existing.status == .booked
        else { return nil }
        return existing
    }

    public func markAbandoned(id: String, attempt: Int64) async throws(ShippyError) {
        try await client.updateOne(
            in: Self.collection, filter: ["_id": .string(id), "attempt": .int64(attempt), "status": "pending"],
            update: ["$set": ["status": "abandoned", "credential": ""]])
    }

    public func markCancelling(
        id: String, cancelledBy: String, credential: String, now: Int64
    ) async throws(ShippyError) -> ConsignmentRecord? {
        try await client.findOneAndUpdate(
            in: Self.collection, filter: ["_id": .string(id), "status": "booked"],
            update: [
                "$set": [
                    "status": "cancelling", "cancelled_by": .string(cancelledBy), "credential": .string(credential),
                    "started_at": .int64(now),
                ]
            ]
        ).map { document throws(ShippyError) in try ConsignmentRecord(document) }
    }

    public func markCancelled(id: String) async throws(ShippyError) {
        try await client.updateOne(
            in: Self.collection, filter: ["_id": .string(id), "status": "cancelling"],
            update: ["$set": ["status": "cancelled", "credential": ""]])
    }

    public func unsettled(startedBefore: Int64, limit: Int) async throws(ShippyError) -> [ConsignmentRecord] {
        var records: [ConsignmentRecord] = []
        for document in try await client.find(
            in: Self.collection,
            filter: [
                "status": ["$in": .array(["pending", "cancelling"])], "started_at": ["$lt": .int64(startedBefore)],
            ],
            sort: ["started_at": .int32(1)], limit: Int64(limit))
        {
            records.append(try ConsignmentRecord(document))
        }
        return records
    }

    /// Only each record's weight and one short field per container travel.
    public func held(by userID: String) async throws(ShippyError) -> Load {
        let open = try await client.find(
            in: Self.collection,
            filter: ["user_id": .string(userID), "status": ["$in": .array(["pending", "booked", "cancelling"])]],
            projection: ["weight": .int32(1), "containers.user_id": .int32(1)])
        return open.reduce(.zero) { held, document in
            guard case .array(let containers)? = document["containers"] else { return held }
            return held + Load(containers: containers.count, weight: Int(document["weight"]?.int32Value ?? 0))
        }
    }

    /// Keyset pagination on (`seq`, `_id`): a page token holds the last pair seen.
    public func consignments(
        ownedBy userID: String, page: PageRequest
    ) async throws(ShippyError) -> Page<ConsignmentRecord> {
        var filter: BSONFields = [
            "user_id": .string(userID), "status": ["$in": .array(["booked", "cancelling", "cancelled"])],
        ]
        if !page.cursor.isEmpty {
            guard page.cursor.count == 2, let seq = Int64(page.cursor[0]) else { throw PageToken.notIssued }
            let after: BSONValue = .array([
                ["seq": ["$gt": .int64(seq)]],
                ["seq": .int64(seq), "_id": ["$gt": .string(page.cursor[1])]],
            ])
            filter.fields.append((key: "$or", value: after))
        }
        let documents = try await client.find(
            in: Self.collection, filter: filter, sort: ["seq": .int32(1), "_id": .int32(1)], limit: Int64(page.size + 1)
        )
        var fetched: [(seq: Int64, record: ConsignmentRecord)] = []
        for document in documents {
            fetched.append((document["seq"]?.int64Value ?? 0, try ConsignmentRecord(document)))
        }
        return Page(fetched: fetched, size: page.size, bytes: \.record.consignment.approximateBytes) {
            [String($0.seq), $0.record.id]
        }.map(\.record)
    }
}

extension BSONFields {
    /// The stored form of a record; `seq` (microseconds since 1970) keeps the listing in the order attempts began.
    init(_ record: ConsignmentRecord) {
        let consignment = record.consignment
        let containers: [BSONValue] = consignment.containers.map { container in
            .document([
                "id": .string(container.id),
                "customer_id": .string(container.customerID),
                "origin": .string(container.origin),
                "user_id": .string(container.userID),
            ])
        }
        self = [
            "_id": .string(consignment.id),
            "description": .string(consignment.description),
            "weight": .int32(consignment.weight),
            "containers": .array(containers),
            "vessel_id": .string(consignment.vesselID),
            "user_id": .string(consignment.userID),
            "seq": .int64(Int64(Date().timeIntervalSince1970 * 1_000_000)),
            "status": .string(record.status.rawValue),
            "attempt": .int64(record.attempt),
            "credential": .string(record.credential),
            "started_at": .int64(record.startedAtMilliseconds),
            "cancelled_by": .string(record.cancelledBy),
        ]
    }
}

extension ConsignmentRecord {
    /// Reads a stored record.
    /// - Throws: `ShippyError` `.internal` when the document lacks a field or holds the wrong type.
    public init(_ document: BSONFields) throws(ShippyError) {
        guard let status = Status(rawValue: document["status"]?.stringValue ?? "booked") else {
            throw ShippyError(.internal, "a stored consignment has an unknown status")
        }
        self.init(
            consignment: try Consignment(document), status: status, attempt: document["attempt"]?.int64Value ?? 0,
            credential: document["credential"]?.stringValue ?? "",
            startedAtMilliseconds: document["started_at"]?.int64Value ?? 0,
            cancelledBy: document["cancelled_by"]?.stringValue ?? "")
    }
}

extension Consignment {
    /// Reads a stored consignment.
    /// - Throws: `ShippyError` `.internal` when the document lacks a field or holds the wrong type.
    init(_ document: BSONFields) throws(ShippyError) {
        guard let id = document["_id"]?.stringValue,
            let description = document["description"]?.stringValue,
            let weight = document["weight"]?.int32Value,
            case .array(let containers)? = document["containers"]
        else { throw ShippyError(.internal, "a stored consignment is malformed") }
        var parsed: [Container] = []
        for case .document(let fields) in containers {
            parsed.append(
                Container(
                    id: fields["id"]?.stringValue ?? "",
                    customerID: fields["customer_id"]?.stringValue ?? "",
                    origin: fields["origin"]?.stringValue ?? "",
                    userID: fields["user_id"]?.stringValue ?? ""
                ))
        }
        self.init(
            id: id,
            description: description,
            weight: weight,
            containers: parsed,
            vesselID: document["vessel_id"]?.stringValue ?? "",
            userID: document["user_id"]?.stringValue ?? ""
        )
    }
}
