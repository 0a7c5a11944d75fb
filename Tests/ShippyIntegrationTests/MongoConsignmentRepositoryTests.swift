import Logging
import ShippyDomain
import ShippyMongo
import ShippyStorage
import ShippyTestSupport
import Testing

/// Integration tests of the consignment repository against the harness's real MongoDB-compatible server.
@Suite(.dropsItsDatabases) struct MongoConsignmentRepositoryTests {
    func withRepository(_ body: (MongoConsignmentRepository, MongoClient) async throws -> Void) async throws {
        try await withMongoClient(database: TestEnvironment.uniqueDatabase("consignments"), threads: 2) { client in
            let repository = MongoConsignmentRepository(client: client)
            try await repository.prepare()
            try await body(repository, client)
            try await client.dropDatabase()
        }
    }

    static func consignment(_ id: String, owner: String) -> Consignment {
        Consignment(
            id: id, description: "Consignment \(id)", weight: 1_000,
            containers: [Container(id: "c1", customerID: "cust001", origin: "Derby", userID: owner)], userID: owner)
    }

    /// Begins and books `consignment` on vessel003; returns it as booked.
    static func book(_ consignment: Consignment, in repository: MongoConsignmentRepository) async throws -> Consignment
    {
        let (record, started) = try await repository.begin(consignment, contact: Contact(), credential: "token", now: 1)
        #expect(started && record.status == .pending && record.attempt == 1)
        return try #require(
            try await repository.markBooked(id: record.id, attempt: 1, vesselID: "vessel003", event: .sample())
        )
        .consignment
    }

    @Test func bookedConsignmentsAreListedPerOwnerInTheOrderTheyBegan() async throws {
        try await withRepository { repository, _ in
            let first = try await Self.book(Self.consignment("first", owner: "ann"), in: repository)
            _ = try await Self.book(Self.consignment("bobs", owner: "bob"), in: repository)
            _ = try await repository.begin(
                Self.consignment("pending", owner: "ann"), contact: Contact(), credential: "t", now: 2)
            let second = try await Self.book(Self.consignment("second", owner: "ann"), in: repository)
            #expect(first.vesselID == "vessel003")
            #expect(
                try await repository.consignments(ownedBy: "ann", page: PageRequest()).items.map(\.consignment) == [
                    first, second,
                ])
            #expect(try await repository.consignments(ownedBy: "bob", page: PageRequest()).items.map(\.id) == ["bobs"])
            #expect(try await repository.consignments(ownedBy: "nobody", page: PageRequest()).items.isEmpty)
            let firstPage = try await repository.consignments(ownedBy: "ann", page: PageRequest(size: 1))
            #expect(firstPage.items.map(\.consignment) == [first] && !firstPage.nextToken.isEmpty)
            let secondPage = try await repository.consignments(
                ownedBy: "ann", page: try PageRequest(pageSize: 1, pageToken: firstPage.nextToken))
            #expect(secondPage.items.map(\.consignment) == [second] && secondPage.nextToken.isEmpty)
        }
    }

    /// What a user's quota counts: their pending and booked records, not abandoned ones, nor anyone else's.
    @Test func theRoomAUserHoldsSumsTheirPendingAndBookedRecords() async throws {
        try await withRepository { repository, client in
            func consignment(_ id: String, owner: String, containers: Int, weight: Int32) -> Consignment {
                Consignment(
                    id: id, description: "d", weight: weight,
                    containers: Array(
                        repeating: Container(customerID: "c", origin: "o", userID: owner), count: containers),
                    userID: owner)
            }
            #expect(try await repository.held(by: "ann") == .zero)
            _ = try await Self.book(consignment("booked", owner: "ann", containers: 3, weight: 300), in: repository)
            _ = try await repository.begin(
                consignment("pending", owner: "ann", containers: 2, weight: 20), contact: Contact(), credential: "t",
                now: 1)
            _ = try await repository.begin(
                consignment("abandoned", owner: "ann", containers: 7, weight: 7_000), contact: Contact(),
                credential: "t", now: 1)
            try await repository.markAbandoned(id: "abandoned", attempt: 1)
            _ = try await Self.book(consignment("bobs", owner: "bob", containers: 5, weight: 5), in: repository)
            // A consignment stored before containers carried their owner still counts each container.
            try await client.insertOne(
                [
                    "_id": "legacy", "description": "Old", "weight": .int32(9), "user_id": "ann", "status": "booked",
                    "containers": .array([["customer_id": "c", "origin": "o"]]),
                ], into: MongoConsignmentRepository.collection)
            #expect(try await repository.held(by: "ann") == Load(containers: 6, weight: 329))
            #expect(try await repository.held(by: "bob") == Load(containers: 5, weight: 5))
        }
    }

    @Test func anAttemptIsBookedOrAbandonedOnceAndTheNextOneBeginsOnlyAfterAnAbandonedOne() async throws {
        try await withRepository { repository, _ in
            let consignment = Self.consignment("c", owner: "ann")
            _ = try await repository.begin(consignment, contact: Contact(), credential: "token", now: 10)
            let again = try await repository.begin(consignment, contact: Contact(), credential: "other", now: 20)
            #expect(!again.started && again.record.attempt == 1 && again.record.credential == "token")
            #expect(try await repository.unsettled(startedBefore: 10, limit: 10).isEmpty)
            #expect(try await repository.unsettled(startedBefore: 11, limit: 10).map(\.id) == ["c"])

            try await repository.markAbandoned(id: "c", attempt: 1)
            #expect(
                try await repository.markBooked(id: "c", attempt: 1, vesselID: "v", event: .sample()) == nil,
                "abandoned stays so")
            let next = try await repository.begin(consignment, contact: Contact(), credential: "token2", now: 30)
            #expect(next.started && next.record.attempt == 2 && next.record.status == .pending)
            try await repository.markAbandoned(id: "c", attempt: 1)
            #expect(try await repository.record(id: "c")?.status == .pending, "an old attempt changes nothing")

            let booked = try await repository.markBooked(id: "c", attempt: 2, vesselID: "v", event: .sample())
            #expect(booked?.status == .booked && booked?.credential == "", "booked, and the token is forgotten")
            #expect(
                try await repository.markBooked(id: "c", attempt: 2, vesselID: "v", event: .sample()) == booked,
                "idempotent")
            try await repository.markAbandoned(id: "c", attempt: 2)
            #expect(try await repository.record(id: "c")?.status == .booked, "a booked record is never abandoned")
            #expect(try await !repository.begin(consignment, contact: Contact(), credential: "t", now: 40).started)
        }
    }

    @Test func consignmentsStoredBeforeStatusesExistedAreBooked() async throws {
        try await withRepository { repository, client in
            try await client.insertOne(
                [
                    "_id": "legacy", "description": "Old", "weight": .int32(5), "containers": .array([]),
                    "vessel_id": "vessel001", "user_id": "ann", "seq": .int64(1),
                ], into: MongoConsignmentRepository.collection)
            try await repository.prepare()
            #expect(
                try await repository.consignments(ownedBy: "ann", page: PageRequest()).items.map(\.id) == ["legacy"])
            #expect(try await repository.record(id: "legacy")?.status == .booked)
        }
    }

    /// An operation whose call's deadline has passed by the time a thread takes it is dropped, not done for no
    /// one: nothing is written, and the caller is told so. Without a deadline (background work, the booking),
    /// the same operation is done.
    @Test func anOperationPastItsCallsDeadlineIsDroppedAndNothingIsWritten() async throws {
        try await withRepository { _, client in
            let collection = "deadlines"
            await #expect {
                try await CallDeadline.$current.withValue(.now - .seconds(1)) {
                    try await client.insertOne(["_id": "late"], into: collection)
                }
            } throws: { error in
                (error as? ShippyError)?.code == .deadlineExceeded
                    && (error as? ShippyError)?.message.contains("nothing was done") == true
            }
            try await CallDeadline.$current.withValue(.now + .seconds(30)) {
                try await client.insertOne(["_id": "in time"], into: collection)
            }
            try await client.insertOne(["_id": "no deadline"], into: collection)
            #expect(try await client.count(in: collection) == 2)
            #expect(try await client.count(in: collection, filter: ["_id": "late"]) == 0)
        }
    }

    /// A page of consignments ends before its items pass `PageRequest.maximumBytes`, and the next page goes on
    /// where it ended.
    @Test func aPageOfLargeConsignmentsEndsBeforeItsBytesPassTheBound() async throws {
        try await withRepository { repository, _ in
            let longest = String(repeating: "é", count: Consignment.maximumFieldLength)
            var large = Self.consignment("", owner: "ann")
            large.containers = Array(
                repeating: Container(customerID: longest, origin: longest, userID: "ann"),
                count: Consignment.maximumContainers)
            for index in 0..<3 {
                large.id = "large-\(index)"
                _ = try await Self.book(large, in: repository)
            }
            let first = try await repository.consignments(ownedBy: "ann", page: PageRequest(size: 10))
            #expect(first.items.count == PageRequest.maximumBytes / large.approximateBytes)
            #expect(!first.nextToken.isEmpty)
            let rest = try await repository.consignments(
                ownedBy: "ann", page: PageRequest(size: 10, cursor: try PageToken.decode(first.nextToken)))
            #expect((first.items + rest.items).map(\.id) == (0..<3).map { "large-\($0)" })
            #expect(rest.nextToken.isEmpty)
        }
    }

    /// A token the service did not issue is `invalidArgument`, whatever it holds: never a query of MongoDB's.
    @Test(arguments: [["1"], ["not a number", "id"], ["1", "id", "extra"]])
    func aCraftedPageTokenIsInvalidArgument(cursor: [String]) async throws {
        try await withRepository { repository, _ in
            let error = await #expect(throws: ShippyError.self) {
                try await repository.consignments(ownedBy: "ann", page: PageRequest(size: 2, cursor: cursor))
            }
            #expect(error == PageToken.notIssued, "\(String(describing: error))")
        }
    }
}
