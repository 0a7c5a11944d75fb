import Logging
import ShippyDomain
import ShippyMongo
import ShippyStorage
import ShippyTestSupport
import Testing

/// Integration tests of the MongoDB layer against the real server the harness started, one database per test.
@Suite(.dropsItsDatabases) struct MongoVesselRepositoryTests {
    func withClient<T>(_ body: (MongoClient) async throws -> T) async throws -> T {
        try await withMongoClient(database: TestEnvironment.uniqueDatabase("vessels"), threads: 2, body)
    }

    @Test func createdVesselIsFoundByASpecificationItMeets() async throws {
        try await withClient { client in
            let repository = MongoVesselRepository(client: client)
            try await repository.prepare()
            let small = Vessel(id: "small", name: "Small", capacity: 2, maxWeight: 1_000)
            let large = Vessel(id: "large", name: "Large", capacity: 20, maxWeight: 90_000, ownerID: "owner-1")
            try await repository.create(large)
            try await repository.create(small)
            #expect(try await repository.findAvailable(try VesselSpecification(capacity: 1, maxWeight: 10)) == small)
            #expect(try await repository.findAvailable(try VesselSpecification(capacity: 3, maxWeight: 10)) == large)
            #expect(try await repository.findAvailable(try VesselSpecification(capacity: 21, maxWeight: 10)) == nil)
        }
    }

    @Test func unavailableVesselIsNotFound() async throws {
        try await withClient { client in
            let repository = MongoVesselRepository(client: client)
            try await repository.create(
                Vessel(id: "docked", name: "Docked", capacity: 5, maxWeight: 5, available: false))
            #expect(try await repository.findAvailable(try VesselSpecification(capacity: 1, maxWeight: 1)) == nil)
        }
    }

    @Test func duplicateIdIsAlreadyExists() async throws {
        try await withClient { client in
            let repository = MongoVesselRepository(client: client)
            let vessel = Vessel(id: "twin", name: "Twin", capacity: 1, maxWeight: 1)
            try await repository.create(vessel)
            await #expect(throws: ShippyError.alreadyExists("a vessel with id twin already exists")) {
                try await repository.create(vessel)
            }
        }
    }

    @Test func concurrentSeedsInsertTheFleetExactlyOnce() async throws {
        try await withClient { client in
            let repository = MongoVesselRepository(client: client)
            let inserted = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<3 { group.addTask { try await repository.seedIfEmpty(Vessel.defaultFleet) } }
                return try await group.reduce(0, +)
            }
            #expect(inserted == Vessel.defaultFleet.count)
            #expect(try await client.count(in: MongoVesselRepository.collection) == Int64(Vessel.defaultFleet.count))
            #expect(try await repository.seedIfEmpty(Vessel.defaultFleet) == 0)
        }
    }

    @Test func indexesCanBeCreatedOnEveryStart() async throws {
        try await withClient { client in
            let repository = MongoVesselRepository(client: client)
            try await repository.prepare()
            try await repository.prepare()
        }
    }

    @Test func documentsRoundTripThroughBSON() async throws {
        try await withClient { client in
            let document: BSONFields = [
                "_id": .string("round-trip ✓"),
                "int32": .int32(-7),
                "int64": .int64(1 << 40),
                "double": .double(2.5),
                "flag": .bool(true),
                "nothing": .null,
                "nested": .document(["list": .array([.int32(1), .string("two"), .document(["three": .int32(3)])])]),
            ]
            try await client.insertOne(document, into: "bson")
            let found = try await client.find(in: "bson", filter: ["_id": .string("round-trip ✓")])
            #expect(found == [document])
        }
    }

    /// Bounded by the selection timeout: a hang would meet the test's time limit.
    @Test(.timeLimit(.minutes(1))) func serverDownIsUnavailableWithinTheSelectionTimeout() async throws {
        let client = try MongoClient(
            url: "mongodb://127.0.0.1:\(try freePort())", database: "none", threads: 1, logger: Logger(label: "test"))
        await #expect(throws: ShippyError.unavailable("MongoDB is unavailable; try again shortly")) {
            try await client.ping()
        }
        await client.shutdown()
    }

    @Test func malformedURLIsInvalidArgument() {
        #expect {
            try MongoClient(url: "postgres://nope", database: "x", threads: 1, logger: Logger(label: "test"))
        } throws: { error in
            (error as? ShippyError)?.code == .invalidArgument
        }
    }

    /// A cancel gives a confirmed booking's room back once, whoever repeats it, and the id never takes room again;
    /// a cancel that a crash stopped between its two steps is finished by the sweep.
    @Test func aCancelledBookingGivesItsRoomBackOnceAndNeverTakesRoomAgain() async throws {
        try await withClient { client in
            let repository = MongoVesselRepository(client: client)
            try await repository.prepare()
            try await repository.create(Vessel(id: "v", name: "V", capacity: 10, maxWeight: 1_000))
            func book(_ id: String, attempt: Int64 = 1) async throws -> Booking {
                try await repository.book(
                    try BookingRequest(
                        consignmentID: id, specification: try VesselSpecification(capacity: 3, maxWeight: 300),
                        ownerID: "ann", attempt: attempt),
                    expiresAt: .max)
            }
            func room() async throws -> [Int32] {
                let vessel = try #require(try await repository.list(PageRequest()).items.first)
                return [vessel.roomCapacity, vessel.roomWeight]
            }
            _ = try await book("c")
            await #expect(throws: BookingErrors.notConfirmed("c")) { try await repository.cancel(consignmentID: "c") }
            _ = try await repository.confirm(consignmentID: "c", attempt: 1)
            #expect(try await room() == [7, 700])
            #expect(try await repository.cancel(consignmentID: "c").state == .cancelled)
            #expect(try await repository.cancel(consignmentID: "c").state == .cancelled)
            #expect(try await room() == [10, 1_000])
            #expect(try await repository.release(consignmentID: "c", attempt: 1, ownerID: "ann").state == .cancelled)
            await #expect(throws: BookingErrors.cancelled("c")) { try await book("c", attempt: 2) }
            await #expect(throws: BookingErrors.notReserved("c")) {
                try await repository.confirm(consignmentID: "c", attempt: 1)
            }
            #expect(try await room() == [10, 1_000])
            await #expect(throws: ShippyError.self) { try await repository.cancel(consignmentID: "none") }

            // Marked cancelled, the room not yet given back (a crash between the two steps): the sweep finishes it.
            _ = try await book("d")
            _ = try await repository.confirm(consignmentID: "d", attempt: 1)
            try await client.updateOne(
                in: MongoVesselRepository.bookings, filter: ["_id": "d"],
                update: ["$set": ["state": "cancelled", "freed": .bool(false)]])
            #expect(try await room() == [7, 700])
            _ = try await repository.releaseExpired(now: 0)
            #expect(try await room() == [10, 1_000])
            _ = try await repository.releaseExpired(now: 0)
            #expect(try await repository.cancel(consignmentID: "d").state == .cancelled)
            #expect(try await room() == [10, 1_000])
        }
    }
}
