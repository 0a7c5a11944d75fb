import ShippyDomain

/// Vessels in the MongoDB collection `vessels`, one document per vessel with the vessel id as `_id`.
public struct MongoVesselRepository: VesselRepository {
    public static let collection = "vessels"
    private let client: MongoClient

    public init(client: MongoClient) {
        self.client = client
    }

    /// Creates the index that `findAvailable` uses. Idempotent.
    public func prepare() async throws(ShippyError) {
        try await client.createIndexes(
            [
                .init(
                    name: "available_capacity_max_weight",
                    keys: ["available": .int32(1), "capacity": .int32(1), "max_weight": .int32(1)]
                )
            ],
            on: Self.collection
        )
    }

    public func findAvailable(_ specification: VesselSpecification) async throws(ShippyError) -> Vessel? {
        let documents = try await client.find(
            in: Self.collection,
            filter: [
                "available": .bool(true),
                "capacity": .document(["$gte": .int32(specification.capacity)]),
                "max_weight": .document(["$gte": .int32(specification.maxWeight)]),
            ],
            sort: ["capacity": .int32(1), "max_weight": .int32(1), "_id": .int32(1)],
            limit: 1
        )
        return try documents.first.map { fields throws(ShippyError) in try Vessel(fields) }
    }

    public func create(_ vessel: Vessel) async throws(ShippyError) {
        do {
            try await client.insertOne(BSONFields(vessel), into: Self.collection)
        } catch where error.code == .alreadyExists {
            throw .alreadyExists("a vessel with id \(vessel.id) already exists")
        }
    }

    public func seedIfEmpty(_ fleet: [Vessel]) async throws(ShippyError) -> Int {
        guard try await client.count(in: Self.collection) == 0 else { return 0 }
        var inserted = 0
        for vessel in fleet {
            do {
                try await client.insertOne(BSONFields(vessel), into: Self.collection)
                inserted += 1
            } catch where error.code == .alreadyExists {
                // Another replica seeded this vessel first; the fixed id keeps it to one copy.
            }
        }
        return inserted
    }
}

extension BSONFields {
    /// The stored form of a vessel.
    init(_ vessel: Vessel) {
        self = [
            "_id": .string(vessel.id),
            "name": .string(vessel.name),
            "capacity": .int32(vessel.capacity),
            "max_weight": .int32(vessel.maxWeight),
            "available": .bool(vessel.available),
            "owner_id": .string(vessel.ownerID),
        ]
    }
}

extension Vessel {
    /// Reads a stored vessel.
    /// - Throws: `ShippyError` `.internal` when the document lacks a field or holds the wrong type.
    init(_ document: BSONFields) throws(ShippyError) {
        guard let id = document["_id"]?.stringValue,
            let name = document["name"]?.stringValue,
            let capacity = document["capacity"]?.int32Value,
            let maxWeight = document["max_weight"]?.int32Value
        else {
            throw ShippyError(.internal, "a stored vessel is malformed")
        }
        self.init(
            id: id,
            name: name,
            capacity: capacity,
            maxWeight: maxWeight,
            available: document["available"]?.boolValue ?? true,
            ownerID: document["owner_id"]?.stringValue ?? ""
        )
    }
}
