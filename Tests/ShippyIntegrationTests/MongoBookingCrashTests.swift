import GRPCCore
import JWTKit
import Logging
import ShippyDomain
import ShippyIdentity
import ShippyMongo
import ShippyStorage
import ShippyTestSupport
import Testing

@testable import ConsignmentService

/// The crash scenarios of `BookingCrashTests` against the real MongoDB-compatible server: the stores of
/// consignment-service and vessel-service as MongoDB holds them, each scenario in a database of its own.
@Suite(.timeLimit(.minutes(5)), .dropsItsDatabases) struct MongoBookingCrashTests {
    static func caller(_ id: String, roles: [Role] = [.user]) async throws -> Caller {
        let signer = await TokenSigner(
            privateKey: ES256PrivateKey(), issuer: "shippy-user-service", audience: "shippy", lifetime: .seconds(600))
        let (token, claims) = try await signer.signed(
            User(id: id, name: "Ann", company: "Acme", email: "\(id.prefix(8))@example.com"), roles: roles)
        return Caller(claims: claims, token: token)
    }

    /// Runs `body` over fresh MongoDB stores of both services, in a database of its own.
    static func withStores(_ body: (BookingStores) async throws -> Void) async throws {
        try await withMongoClient(database: TestEnvironment.uniqueDatabase("crash"), threads: 2) { mongo in
            let vessels = MongoVesselRepository(client: mongo)
            let consignments = MongoConsignmentRepository(client: mongo)
            try await vessels.prepare()
            try await consignments.prepare()
            try await body(
                BookingStores(
                    vessels: vessels, consignments: consignments,
                    records: {
                        try await mongo.find(in: MongoConsignmentRepository.collection, filter: [:])
                            .map { try ConsignmentRecord($0) }
                    }))
            try await mongo.dropDatabase()
        }
    }

    /// The use case as `BookingCrashTests` builds it.
    static func process(
        _ consignments: any ConsignmentRepository, _ vessels: any VesselBooker, _ clock: TestClock
    ) -> BookingProcess {
        let booking = ConsignmentBooking(
            consignments: consignments, vessels: vessels, staleAfter: .seconds(30), logger: Logger(label: "booking"),
            now: { clock.now }, quota: { crashScenarioQuota })
        return BookingProcess(
            create: {
                try await booking.create($0, key: try IdempotencyKey(["idempotency-key": "order-1"]), caller: $1)
            },
            cancel: { try await booking.cancel(id: $0, caller: $1) },
            recover: { try await booking.recoverStalled() })
    }

    @Test(arguments: [Int32(10), 2], CrashPlan.Moment.allCases)
    func theInvariantHoldsInMongoDBAfterACrashAtEveryStep(room: Int32, moment: CrashPlan.Moment) async throws {
        let caller = try await Self.caller("a0000000-0000-4000-8000-00000000000a")
        for crashAt in 1...6 {
            try await Self.withStores { stores in
                let (violations, retryBooked) = try await crashScenario(
                    crashAt: crashAt, moment, sweepFirst: crashAt.isMultiple(of: 2), room: room, caller: caller,
                    stores: stores, make: Self.process)
                #expect(violations.isEmpty, "\(violations)")
                #expect(retryBooked == (room == 10), "crash \(moment) at step \(crashAt)")
            }
        }
    }

    @Test(arguments: CrashPlan.Moment.allCases)
    func aCancelIsFinishedNeverUndoneInMongoDBAfterACrashAtEveryStep(moment: CrashPlan.Moment) async throws {
        let owner = try await Self.caller("a0000000-0000-4000-8000-00000000000a")
        let admin = try await Self.caller("d0000000-0000-4000-8000-00000000000d", roles: [.user, .admin])
        for crashAt in 1...5 {
            try await Self.withStores { stores in
                let violations = try await cancelScenario(
                    crashAt: crashAt, moment, owner: owner, caller: crashAt.isMultiple(of: 2) ? admin : owner,
                    stores: stores, make: Self.process)
                #expect(violations.isEmpty, "\(violations)")
            }
        }
    }
}
