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
    @Test(arguments: [Int32(10), 2], CrashPlan.Moment.allCases)
    func theInvariantHoldsInMongoDBAfterACrashAtEveryStep(room: Int32, moment: CrashPlan.Moment) async throws {
        let signer = await TokenSigner(
            privateKey: ES256PrivateKey(), issuer: "shippy-user-service", audience: "shippy", lifetime: .seconds(600))
        let (token, claims) = try await signer.signed(
            User(id: "a0000000-0000-4000-8000-00000000000a", name: "Ann", company: "Acme", email: "ann@example.com"))
        let caller = Caller(claims: claims, token: token)
        for crashAt in 1...6 {
            try await withMongoClient(database: TestEnvironment.uniqueDatabase("crash"), threads: 2) { mongo in
                let vessels = MongoVesselRepository(client: mongo)
                let consignments = MongoConsignmentRepository(client: mongo)
                try await vessels.prepare()
                try await consignments.prepare()
                let (violations, retryBooked) = try await crashScenario(
                    crashAt: crashAt, moment, sweepFirst: crashAt.isMultiple(of: 2), room: room, caller: caller,
                    stores: BookingStores(
                        vessels: vessels, consignments: consignments,
                        records: {
                            try await mongo.find(in: MongoConsignmentRepository.collection, filter: [:])
                                .map { try ConsignmentRecord($0) }
                        }),
                    make: { consignments, vessels, clock in
                        let booking = ConsignmentBooking(
                            consignments: consignments, vessels: vessels, staleAfter: .seconds(30),
                            logger: Logger(label: "booking"), now: { clock.now }, quota: { crashScenarioQuota })
                        return BookingProcess(
                            create: {
                                try await booking.create(
                                    $0, key: try IdempotencyKey(["idempotency-key": "order-1"]), caller: $1)
                            },
                            recover: { try await booking.recoverStalled() })
                    })
                #expect(violations.isEmpty, "\(violations)")
                #expect(retryBooked == (room == 10), "crash \(moment) at step \(crashAt)")
                try await mongo.dropDatabase()
            }
        }
    }
}
