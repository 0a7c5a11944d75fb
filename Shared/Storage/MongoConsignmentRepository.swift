import Foundation
import ShippyDomain

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
        } catch where error.code == .alreadyExists {
            throw .alreadyExists("a consignment with id \(consignment.id) already exists")
        }
    }

    public func consignments(ownedBy userID: String) async throws(ShippyError) -> [Consignment] {
        let documents = try await client.find(
            in: Self.collection, filter: ["user_id": .string(userID)], sort: ["seq": .int32(1), "_id": .int32(1)])
        var consignments: [Consignment] = []
        for document in documents { consignments.append(try Consignment(document)) }
        return consignments
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
