import Foundation
import Metrics
import ShippyDomain
import ShippyStorage

/// Consignments in the MongoDB collection `consignments`, one document each with its containers embedded, and
/// the booking protocol's fields: `status`, `attempt`, `credential` (while pending or cancelling), `started_at`,
/// `cancelled_by` and the owner's `contact`.
///
/// The outbox lives in the same documents: the update that marks a record booked or cancelled pushes its event
/// onto the record's `outbox` array and sets `outbox_at` (one document's update is atomic, so the change and its
/// event are stored together or not at all). The publisher finds records by `outbox_at`, pulls each event once
/// NATS took it, and clears `outbox_at` when none is left. An event NATS refuses for good moves to `outbox_dead`.
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
                .init(name: "outbox_at", keys: ["outbox_at": .int32(1)]),
            ], on: Self.collection)
        try await client.updateMany(
            in: Self.collection, filter: ["status": ["$exists": .bool(false)]],
            update: ["$set": ["status": "booked", "attempt": .int64(0), "credential": "", "started_at": .int64(0)]])
    }

    public func begin(
        _ consignment: Consignment, contact: Contact, credential: String, now: Int64
    ) async throws(ShippyError) -> (record: ConsignmentRecord, started: Bool) {
        var record = ConsignmentRecord(
            consignment: consignment, status: .pending, attempt: 1, credential: credential, startedAtMilliseconds: now,
            contact: contact)
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
        id: String, attempt: Int64, vesselID: String, event: OutboxEvent
    ) async throws(ShippyError) -> ConsignmentRecord? {
        if let document = try await client.findOneAndUpdate(
            in: Self.collection, filter: ["_id": .string(id), "attempt": .int64(attempt), "status": "pending"],
            update: Self.storing(event, ["status": "booked", "vessel_id": .string(vesselID), "credential": ""]))
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

    public func markCancelled(id: String, event: OutboxEvent) async throws(ShippyError) {
        try await client.updateOne(
            in: Self.collection, filter: ["_id": .string(id), "status": "cancelling"],
            update: Self.storing(event, ["status": "cancelled", "credential": ""]))
    }

    /// An update that sets `fields` and stores `event` in the record's outbox, in one write.
    private static func storing(_ event: OutboxEvent, _ fields: BSONFields) -> BSONFields {
        [
            "$set": .document(fields), "$push": ["outbox": .document(BSONFields(event))],
            "$min": ["outbox_at": .int64(Int64(Date().timeIntervalSince1970 * 1000))],
        ]
    }

    /// The `$in` filter of the statuses for which `predicate` holds.
    private static func statuses(_ predicate: (ConsignmentRecord.Status) -> Bool) -> BSONValue {
        ["$in": .array(ConsignmentRecord.Status.allCases.filter(predicate).map { .string($0.rawValue) })]
    }

    public func unsettled(startedBefore: Int64, limit: Int) async throws(ShippyError) -> [ConsignmentRecord] {
        var records: [ConsignmentRecord] = []
        for document in try await client.find(
            in: Self.collection,
            filter: ["status": Self.statuses(\.isUnsettled), "started_at": ["$lt": .int64(startedBefore)]],
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
            filter: ["user_id": .string(userID), "status": Self.statuses(\.holdsRoom)],
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
        var filter: BSONFields = ["user_id": .string(userID), "status": Self.statuses(\.isConsignment)]
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

// MARK: The outbox

extension MongoConsignmentRepository {
    /// Records whose outbox holds events, oldest first; each event is pulled once `publish` returned.
    public func publishPending(
        limit: Int,
        _ publish: @escaping @Sendable (OutboxEvent) async throws -> Void
    ) async throws(ShippyError) -> Int {
        let waiting = try await client.find(
            in: Self.collection, filter: ["outbox_at": ["$gt": .int64(0)]], sort: ["outbox_at": .int32(1)],
            limit: Int64(limit), projection: ["outbox": .int32(1)])
        var published = 0
        for document in waiting {
            guard let id = document["_id"]?.stringValue else { continue }
            let events: [BSONValue] = if case .array(let events)? = document["outbox"] { events } else { [] }
            for case .document(let stored) in events {
                guard let event = try? OutboxEvent(stored) else {
                    try await setAside(stored, of: id, reason: "malformed")
                    continue
                }
                do {
                    try await publish(event)
                } catch let error as ShippyError where error.code == .invalidArgument {
                    try await setAside(stored, of: id, reason: error.message)
                    continue
                } catch {
                    return published  // NATS is away: keep this event and the rest for the next round, in order.
                }
                try await client.updateOne(
                    in: Self.collection, filter: ["_id": .string(id)],
                    update: ["$pull": ["outbox": ["id": stored["id"] ?? .null]]])
                published += 1
            }
            // Nothing left to publish: the record no longer waits (unless a new event came meanwhile).
            try await client.updateOne(
                in: Self.collection, filter: ["_id": .string(id), "outbox.0": ["$exists": .bool(false)]],
                update: ["$unset": ["outbox_at": "", "outbox": ""]])
        }
        return published
    }

    /// Moves an event the broker will never take (or that cannot be read) to the record's `outbox_dead`, so that
    /// the rest flow; counted in `outbox_dead_lettered_total` and in the backlog's dead letters.
    private func setAside(_ stored: BSONFields, of id: String, reason: String) async throws(ShippyError) {
        Counter(label: "outbox_dead_lettered_total").increment()
        var dead = stored
        dead.fields.append((key: "reason", value: .string(reason)))
        try await client.updateOne(
            in: Self.collection, filter: ["_id": .string(id)],
            update: ["$pull": ["outbox": ["id": stored["id"] ?? .null]], "$push": ["outbox_dead": .document(dead)]])
    }

    /// Records with events waiting (counted as events only for the oldest's age), and records with dead letters.
    public func backlog() async throws(ShippyError) -> OutboxBacklog {
        let oldest = try await client.find(
            in: Self.collection, filter: ["outbox_at": ["$gt": .int64(0)]], sort: ["outbox_at": .int32(1)], limit: 1,
            projection: ["outbox_at": .int32(1)]
        ).first?["outbox_at"]?.int64Value
        let pending = try await client.count(in: Self.collection, filter: ["outbox_at": ["$gt": .int64(0)]])
        let dead = try await client.count(in: Self.collection, filter: ["outbox_dead.0": ["$exists": .bool(true)]])
        let age = oldest.map { Int64(Date().timeIntervalSince1970 * 1000) - $0 } ?? 0
        return OutboxBacklog(pending: Int(pending), oldestAge: .milliseconds(max(0, age)), deadLettered: Int(dead))
    }
}

extension BSONFields {
    /// The stored form of an event: its payload as base64 text.
    init(_ event: OutboxEvent) {
        self = [
            "id": .string(event.id.uuidString), "subject": .string(event.subject),
            "payload": .string(Data(event.payload).base64EncodedString()),
            "trace": .document(
                BSONFields(event.traceContext.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })),
        ]
    }
}

extension OutboxEvent {
    /// Reads a stored event.
    /// - Throws: `ShippyError` `.internal` when it is malformed.
    init(_ document: BSONFields) throws(ShippyError) {
        guard let id = document["id"]?.stringValue.flatMap(UUID.init(uuidString:)),
            let subject = document["subject"]?.stringValue,
            let payload = document["payload"]?.stringValue.flatMap({ Data(base64Encoded: $0) })
        else { throw ShippyError(.internal, "a stored consignment event is malformed") }
        var trace: [String: String] = [:]
        if case .document(let fields)? = document["trace"] {
            for (key, value) in fields.fields { trace[key] = value.stringValue }
        }
        self.init(id: id, subject: subject, payload: Array(payload), traceContext: trace)
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
            "contact": ["email": .string(record.contact.email), "name": .string(record.contact.name)],
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
            cancelledBy: document["cancelled_by"]?.stringValue ?? "", contact: Contact(document["contact"]))
    }
}

extension Contact {
    init(_ value: BSONValue?) {
        guard case .document(let fields)? = value else { self.init(); return }
        self.init(email: fields["email"]?.stringValue ?? "", name: fields["name"]?.stringValue ?? "")
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
