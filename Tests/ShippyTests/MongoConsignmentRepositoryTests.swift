import Logging
import ShippyDomain
import ShippyStorage
import Testing

/// Integration tests of the consignment repository against the harness's real MongoDB-compatible server.
@Suite struct MongoConsignmentRepositoryTests {
    @Test func consignmentsRoundTripAndAreListedPerOwnerInCreationOrder() async throws {
        let client = try MongoClient(
            url: try TestEnvironment.mongoURL(), database: TestEnvironment.uniqueDatabase("consignments"), threads: 2,
            logger: Logger(label: "test"))
        let repository = MongoConsignmentRepository(client: client)
        try await repository.prepare()
        func consignment(_ id: String, owner: String) -> Consignment {
            Consignment(
                id: id, description: "Consignment \(id)", weight: 1_000,
                containers: [Container(id: "c1", customerID: "cust001", origin: "Derby", userID: owner)],
                vesselID: "vessel003", userID: owner)
        }
        let first = consignment("first", owner: "ann")
        let second = consignment("second", owner: "ann")
        try await repository.create(first)
        try await repository.create(consignment("bobs", owner: "bob"))
        try await repository.create(second)
        #expect(try await repository.consignments(ownedBy: "ann") == [first, second])
        #expect(try await repository.consignments(ownedBy: "bob").map(\.id) == ["bobs"])
        #expect(try await repository.consignments(ownedBy: "nobody").isEmpty)
        await #expect(throws: ShippyError.alreadyExists("a consignment with id first already exists")) {
            try await repository.create(first)
        }
        await client.shutdown()
    }
}
