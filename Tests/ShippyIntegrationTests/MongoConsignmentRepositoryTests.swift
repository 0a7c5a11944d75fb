import Logging
import ShippyDomain
import ShippyMongo
import ShippyStorage
import ShippyTestSupport
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
        #expect(try await repository.consignments(ownedBy: "ann", page: PageRequest()).items == [first, second])
        #expect(try await repository.consignments(ownedBy: "bob", page: PageRequest()).items.map(\.id) == ["bobs"])
        #expect(try await repository.consignments(ownedBy: "nobody", page: PageRequest()).items.isEmpty)
        let firstPage = try await repository.consignments(ownedBy: "ann", page: PageRequest(size: 1))
        #expect(firstPage.items == [first] && !firstPage.nextToken.isEmpty)
        let secondPage = try await repository.consignments(
            ownedBy: "ann", page: try PageRequest(pageSize: 1, pageToken: firstPage.nextToken))
        #expect(secondPage.items == [second] && secondPage.nextToken.isEmpty)
        #expect(try await repository.consignment(id: "second") == second)
        try await repository.delete(id: "second")
        #expect(try await repository.consignment(id: "second") == nil)
        await #expect(throws: ShippyError.alreadyExists("a consignment with id first already exists")) {
            try await repository.create(first)
        }
        await client.shutdown()
    }
}
