import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import ShippyConfiguration
import ShippyContracts
import ShippyDiscovery
import ShippyDomain
import ShippyMongo
import ShippyRuntime
import ShippyStorage
import ShippyTestSupport
import Synchronization
import Testing

@testable import ConsignmentService

/// The booking saga against a real vessel-service and the real MongoDB-compatible server: what happens to the
/// room when a step after `Book` fails, or when nobody ever confirms.
@Suite(.timeLimit(.minutes(2)), .dropsItsDatabases) struct BookingSagaTests {
    static let sample = Consignment_Consignment.with {
        $0.description_p = "Three containers"
        $0.weight = 55_000
        $0.containers = (1...3).map { index in
            .with {
                $0.customerID = "cust00\(index)"; $0.origin = "Derby"
            }
        }
    }

    /// The room left on the only vessel, the state of the booking of `consignmentID`, and how many consignments
    /// are booked (listed).
    func observe(
        _ system: ShippySystem, consignmentID: String
    ) async throws -> (room: Int32?, state: String?, listed: Int) {
        try await system.withMongo { mongo in
            let vessel = try await mongo.find(in: MongoVesselRepository.collection, filter: [:]).first
            let booking = try await mongo.find(
                in: MongoVesselRepository.bookings, filter: ["_id": .string(consignmentID)]
            ).first
            let stored = try await mongo.count(in: MongoConsignmentRepository.collection, filter: ["status": "booked"])
            return (vessel?["room_capacity"]?.int32Value, booking?["state"]?.stringValue, Int(stored))
        }
    }

    @Test func aStoreThatFailsAfterConfirmLeavesTheAttemptPendingAndARetryWithTheSameKeyFinishesIt() async throws {
        let system = try ShippySystem()
        try await system.storeFleet([Vessel(id: "v", name: "Vessel", capacity: 10, maxWeight: 1_000_000)])
        let vessel = try system.startVessel()
        try await cleaningUp({
            await vessel.process.stop()
        }) {
            try await vessel.waitUntilServing()

            // The production wiring on a real socket, its store failing once after Confirm, as MongoDB would.
            let mongo = try MongoClient(
                url: try TestEnvironment.mongoURL(), database: system.database, threads: 2,
                logger: Logger(label: "test"))
            let repository = FaultyConsignmentRepository(MongoConsignmentRepository(client: mongo), failures: 1)
            let vesselClient = GRPCClientService(
                transport: try ServiceTransport(
                    main: .ipv4(address: "127.0.0.1", port: vessel.port), serviceConfig: GRPCVesselBooker.serviceConfig)
            )
            let booking = ConsignmentBooking(
                consignments: repository,
                vessels: GRPCVesselBooker(
                    client: vesselClient.client, timeout: LiveSetting(.seconds(5))),
                staleAfter: .seconds(1), logger: Logger(label: "test"))
            let app = ConsignmentServiceApp.build(
                configuration: ServerConfiguration(port: 0), booking: booking,
                verifier: await system.keys.signer().verifier, dependencies: [], logger: Logger(label: "test"))
            let group = ServiceRunner.makeGroup(
                [("vessel-client", vesselClient)] + app.services, shutdownGrace: .seconds(5),
                logger: Logger(label: "test"))
            let owner = TestKeys.user("Ann")
            var metadata = try await system.keys.bearer(owner)
            metadata.addString("order-7", forKey: "idempotency-key")
            let consignmentID = try #require(try IdempotencyKey(metadata)).consignmentID(owner: owner.id)
            let call = metadata

            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                let port = try #require(try await app.server.listeningAddress?.ipv4).port
                try await withGRPCClient(
                    transport: .http2NIOPosix(
                        target: .ipv4(host: "127.0.0.1", port: port), transportSecurity: .plaintext)
                ) { client in
                    let shipping = Consignment_ShippingService.Client(wrapping: client)
                    await expectStatus(.unavailable, "MongoDB is unavailable") {
                        _ = try await shipping.createConsignment(Self.sample, metadata: call)
                    }
                    let afterFailure = try await observe(system, consignmentID: consignmentID)
                    #expect(
                        afterFailure.room == 7 && afterFailure.state == "confirmed" && afterFailure.listed == 0,
                        "the confirmed room stays, the consignment is not listed yet: \(afterFailure)")

                    let first = try await shipping.createConsignment(Self.sample, metadata: call).consignment
                    let again = try await shipping.createConsignment(Self.sample, metadata: call).consignment
                    #expect(first.id == consignmentID && again == first)
                    let afterRetries = try await observe(system, consignmentID: consignmentID)
                    #expect(
                        afterRetries.room == 7 && afterRetries.state == "confirmed" && afterRetries.listed == 1,
                        "the retry finished the attempt; the three containers are booked once: \(afterRetries)")
                }
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
            await mongo.shutdown()
        }
    }

    @Test func aReservationNeverConfirmedIsReleasedByTheSweepAndAConfirmedOneNever() async throws {
        let system = try ShippySystem()
        try await system.storeFleet([Vessel(id: "v", name: "Vessel", capacity: 10, maxWeight: 1_000_000)])
        let vessel = try system.startVessel(extra: ["RESERVATION_LIFETIME": "3", "SWEEP_INTERVAL": "0.2"])
        try await cleaningUp({
            await vessel.process.stop()
        }) {
            try await vessel.waitUntilServing()
            let ann = try await system.keys.bearer(TestKeys.user("Ann"))
            try await vessel.withClient { client in
                let vessels = Vessel_VesselService.Client(wrapping: client)
                // Confirmed first, so that its reservation's lifetime ends before the orphan's: the sweep that
                // releases the orphan has passed the confirmed one too.
                _ = try await vessels.book(
                    .with {
                        $0.consignmentID = "kept"; $0.containers = 2; $0.weight = 10
                    }, metadata: ann)
                _ = try await vessels.confirm(.with { $0.consignmentID = "kept" }, metadata: ann)
                // As a consignment-service that crashed after Book would leave it: never confirmed.
                _ = try await vessels.book(
                    .with {
                        $0.consignmentID = "orphan"; $0.containers = 4; $0.weight = 10
                    }, metadata: ann)
            }
            #expect(try await observe(system, consignmentID: "orphan").room == 4)
            let released = await eventually(within: .seconds(10)) {
                (try? await observe(system, consignmentID: "orphan")).map { $0.room == 8 && $0.state == "released" }
                    ?? false
            }
            #expect(released, "the orphaned reservation's room came back after its lifetime and a sweep")
            #expect(try await observe(system, consignmentID: "kept").state == "confirmed")
            #expect(try await observe(system, consignmentID: "kept").room == 8, "the confirmed booking keeps its room")
            #expect(vessel.process.errorOutput.contains("released expired reservations"))
        }
    }
}

/// A consignment repository over a real one whose first `failures` markings as booked fail, as a MongoDB that
/// went away between Confirm and the store would make them.
final class FaultyConsignmentRepository: ConsignmentRepository {
    private let base: any ConsignmentRepository
    private let failures: Mutex<Int>

    init(_ base: any ConsignmentRepository, failures: Int) {
        self.base = base
        self.failures = Mutex(failures)
    }

    func markBooked(
        id: String, attempt: Int64, vesselID: String, event: OutboxEvent
    ) async throws(ShippyError) -> ConsignmentRecord? {
        let fail = failures.withLock { count in
            defer { count -= 1 }
            return count > 0
        }
        if fail { throw .unavailable("MongoDB is unavailable; try again shortly") }
        return try await base.markBooked(id: id, attempt: attempt, vesselID: vesselID, event: event)
    }

    func begin(
        _ consignment: Consignment, contact: Contact, credential: String, now: Int64
    ) async throws(ShippyError) -> (record: ConsignmentRecord, started: Bool) {
        try await base.begin(consignment, contact: contact, credential: credential, now: now)
    }
    func record(id: String) async throws(ShippyError) -> ConsignmentRecord? { try await base.record(id: id) }
    func markAbandoned(id: String, attempt: Int64) async throws(ShippyError) {
        try await base.markAbandoned(id: id, attempt: attempt)
    }
    func markCancelling(
        id: String, cancelledBy: String, credential: String, now: Int64
    ) async throws(ShippyError) -> ConsignmentRecord? {
        try await base.markCancelling(id: id, cancelledBy: cancelledBy, credential: credential, now: now)
    }
    func markCancelled(id: String, event: OutboxEvent) async throws(ShippyError) {
        try await base.markCancelled(id: id, event: event)
    }
    func publishPending(
        limit: Int, _ publish: @escaping @Sendable (OutboxEvent) async throws -> Void
    ) async throws(ShippyError) -> Int {
        try await base.publishPending(limit: limit, publish)
    }
    func backlog() async throws(ShippyError) -> OutboxBacklog { try await base.backlog() }
    func unsettled(startedBefore: Int64, limit: Int) async throws(ShippyError) -> [ConsignmentRecord] {
        try await base.unsettled(startedBefore: startedBefore, limit: limit)
    }
    func held(by userID: String) async throws(ShippyError) -> Load {
        try await base.held(by: userID)
    }
    func consignments(ownedBy userID: String, page: PageRequest) async throws(ShippyError) -> Page<ConsignmentRecord> {
        try await base.consignments(ownedBy: userID, page: page)
    }
}
