import Foundation
import ShippyDomain
import ShippyStorage

/// Consignments in the MongoDB collection `consignments`, one document each with its containers embedded.
public struct MongoConsignmentRepository: ConsignmentRepository {
    public static let collection = "consignments"
    private let client: MongoClient

    public init(client: MongoClient) {
        self.client = client
    }

    /// Creates the index that lists a user's consignments. Idempotent.
    public func prepare() async throws(ShippyError) {
        try await client.createIndexes(
            [.init(name: "user_id_seq", keys: ["user_id": .int32(1), "seq": .int32(1)])], on: Self.collection)
    }

    public func create(_ consignment: Consignment) async throws(ShippyError) {
        do {
            try await client.insertOne(BSONFields(consignment), into: Self.collection)
        } catch  where error.code == .alreadyExists {
            throw .alreadyExists("a consignment with id \(consignment.id) already exists")
        }
    }

    public func consignment(id: String) async throws(ShippyError) -> Consignment? {
        try await client.find(in: Self.collection, filter: ["_id": .string(id)], limit: 1).first
            .map { document throws(ShippyError) in try Consignment(document) }
    }

    public func delete(id: String) async throws(ShippyError) {
        try await client.deleteMany(in: Self.collection, filter: ["_id": .string(id)])
    }

    /// Keyset pagination on (`seq`, `_id`): a page token holds the last pair seen.
    public func consignments(ownedBy userID: String, page: PageRequest) async throws(ShippyError) -> Page<Consignment> {
        var filter: BSONFields = ["user_id": .string(userID)]
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
        var fetched: [(seq: Int64, consignment: Consignment)] = []
        for document in documents {
            fetched.append((document["seq"]?.int64Value ?? 0, try Consignment(document)))
        }
        return Page(fetched: fetched, size: page.size) { [String($0.seq), $0.consignment.id] }.map(\.consignment)
    }
}

extension BSONFields {
    /// The stored form of a consignment; `seq` (microseconds since 1970) keeps the listing in creation order.
    init(_ consignment: Consignment) {
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
        ]
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
