import Foundation
import GRPCCore
import ShippyContracts
import ShippyDomain
import ShippyMongo
import ShippyStorage
import ShippyTestSupport
import Synchronization
import Testing

/// Bookings while the services die: two consignment-service and two vessel-service replicas over a real
/// MongoDB-compatible server of the test's own, twelve shippers booking with idempotency keys (retrying a failed
/// call with the same key, on the other replica), each service killed with SIGKILL at random moments and started
/// again, and MongoDB stopped (SIGSTOP: silent, not refusing) for a few seconds now and then. Once everything is
/// quiet, the booking invariant must hold over every vessel.
///
/// `SHIPPY_CRASH_BOOKINGS` and `SHIPPY_CRASH_KILLS` (per service) scale it up; the defaults keep `make test` short.
@Suite(.timeLimit(.minutes(15)), .dropsItsDatabases) struct BookingCrashEndToEndTests {
    static let bookings = Int(ProcessInfo.processInfo.environment["SHIPPY_CRASH_BOOKINGS"] ?? "") ?? 150
    static let killsPerService = Int(ProcessInfo.processInfo.environment["SHIPPY_CRASH_KILLS"] ?? "") ?? 3
    static let fleet = (1...4).map {
        Vessel(id: "ship\($0)", name: "Ship \($0)", capacity: 1_000, maxWeight: 10_000_000)
    }

    /// The replicas of one kind, each restarted on its own port after a kill.
    final class Replicas: Sendable {
        let kind: String
        /// Starts replica `index`, on `port` or a free one.
        let start: @Sendable (_ index: Int, _ port: Int?) throws -> ServiceProcess
        private let current: Mutex<[ServiceProcess]>

        init(
            kind: String, count: Int, start: @escaping @Sendable (_ index: Int, _ port: Int?) throws -> ServiceProcess
        ) throws {
            self.kind = kind
            self.start = start
            current = Mutex(try (0..<count).map { try start($0, nil) })
        }

        var all: [ServiceProcess] { current.withLock { $0 } }
        subscript(index: Int) -> ServiceProcess { current.withLock { $0[index] } }

        /// SIGKILL, then the same executable again on the same port.
        func killAndRestart(_ index: Int) async throws {
            let victim = self[index]
            victim.process.signal(SIGKILL)
            _ = await victim.process.waitForExit(timeout: .seconds(10))
            let replacement = try start(index, victim.port)
            current.withLock { $0[index] = replacement }
            try await replacement.waitUntilServing(timeout: .seconds(60))
        }
    }

    @Test func theBookingInvariantHoldsWhileEveryServiceIsKilledAgainAndAgain() async throws {
        let mongo = try MongoServer(port: try freePort())
        try await mongo.waitUntilListening()
        let system = try ShippySystem(mongoURL: mongo.url)
        try await system.storeFleet(Self.fleet)
        let vessels = try Replicas(kind: "vessel-service", count: 2) { _, port in
            try system.startVessel(extra: ["RESERVATION_LIFETIME": "5", "SWEEP_INTERVAL": "0.5"], port: port)
        }
        let consignments = try Replicas(kind: "consignment-service", count: 2) { index, port in
            // Replica i calls vessel-service replica i (whichever process it is now: a restart keeps the port).
            try system.startConsignment(
                vessel: vessels[index], extra: ["BOOKING_RECOVERY_AFTER": "3", "VESSEL_TIMEOUT": "10"], port: port)
        }
        try await cleaningUp({
            await ShippySystem.stopAll(vessels.all + consignments.all)
            mongo.process.signal(SIGCONT)
            await mongo.process.stop()
        }) {
            for service in vessels.all + consignments.all { try await service.waitUntilServing() }
            var tokens: [Metadata] = []
            for index in 0..<12 { tokens.append(try await system.keys.bearer(TestKeys.user("Shipper\(index)"))) }
            let seed = UInt64.random(in: 0...UInt64(UInt32.max))
            print(
                "booking crash test: \(Self.bookings) bookings, \(Self.killsPerService) kills per service, seed \(seed)"
            )

            let load = Load()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for shipper in 0..<12 {
                    let token = tokens[shipper]
                    group.addTask {
                        while true {
                            // At least the bookings asked for, and load for as long as the kills go on.
                            guard let index = load.nextBooking(atLeast: Self.bookings) else { return }
                            if let booked = await Self.book(index, token: token, through: consignments) {
                                load.answered(booked)
                            }
                        }
                    }
                }
                group.addTask {
                    var generator = SeededGenerator(seed: seed)
                    for round in 0..<(Self.killsPerService * 2) {
                        try await Task.sleep(for: .milliseconds(Int.random(in: 300...1_500, using: &generator)))
                        let replicas = round.isMultiple(of: 2) ? consignments : vessels
                        let index = Int.random(in: 0...1, using: &generator)
                        try await replicas.killAndRestart(index)
                        print("booking crash test: killed and restarted \(replicas.kind) \(index)")
                        if round % 4 == 3 {
                            let pause = Duration.milliseconds(Int.random(in: 2_000...4_000, using: &generator))
                            mongo.process.signal(SIGSTOP)
                            try await Task.sleep(for: pause)
                            mongo.process.signal(SIGCONT)
                            print("booking crash test: MongoDB stopped for \(pause)")
                        }
                    }
                    load.killsAreDone()
                }
                try await group.waitForAll()
            }

            // Quiet: every reservation confirmed or swept, every attempt recovered.
            let quiet = await eventually(within: .seconds(120)) {
                (try? await system.withMongo { mongo in
                    let pending = try await mongo.count(
                        in: MongoConsignmentRepository.collection, filter: ["status": "pending"])
                    let unconfirmed = try await mongo.count(
                        in: MongoVesselRepository.bookings, filter: ["state": ["$in": .array(["pending", "reserved"])]])
                    return pending == 0 && unconfirmed == 0
                }) ?? false
            }
            #expect(quiet, "every attempt was settled and every reservation confirmed or released")

            let (vesselDocuments, records) = try await system.withMongo { mongo in
                (
                    try await mongo.find(in: MongoVesselRepository.collection, filter: [:]),
                    try await mongo.find(in: MongoConsignmentRepository.collection, filter: [:]).map {
                        try ConsignmentRecord($0)
                    }
                )
            }
            let ok = load.answeredOK.map(\.toDomain)
            let violations = bookingInvariantViolations(
                vessels: try vesselDocuments.map { try Vessel($0) }, records: records, answeredOK: ok)
            let booked = records.filter { $0.status == .booked }
            print(
                "booking crash test: \(ok.count) answered OK, \(booked.count) booked, "
                    + "\(booked.reduce(0) { $0 + $1.consignment.containers.count }) containers, "
                    + "\(records.count - booked.count) abandoned attempts, violations: \(violations.count)")
            #expect(violations.isEmpty, "\(violations)")
            #expect(Set(ok.map(\.id)).count == ok.count, "no key booked twice")
            #expect(ok.count > Self.bookings / 2, "most bookings went through despite the kills")
        }
    }

    /// The shippers' shared state: which booking is next, what was answered OK, whether the kills are over.
    final class Load: Sendable {
        private let state = Mutex((next: 0, killsDone: false, answeredOK: [Consignment_Consignment]()))

        /// The next booking's index, or `nil` once `count` were handed out and the kills are over.
        func nextBooking(atLeast count: Int) -> Int? {
            state.withLock { state in
                guard state.next < count || !state.killsDone else { return nil }
                defer { state.next += 1 }
                return state.next
            }
        }

        func answered(_ consignment: Consignment_Consignment) { state.withLock { $0.answeredOK.append(consignment) } }
        func killsAreDone() { state.withLock { $0.killsDone = true } }
        var answeredOK: [Consignment_Consignment] { state.withLock { $0.answeredOK } }
    }

    /// One booking with its own idempotency key, retried with that key on the other replica while the outcome is
    /// unknown; `nil` when it was refused or never got an answer within a minute.
    static func book(
        _ index: Int, token: Metadata, through replicas: Replicas
    ) async -> Consignment_Consignment? {
        var metadata = token
        metadata.addString("crash-\(index)", forKey: "idempotency-key")
        let request = Consignment_Consignment.with {
            $0.description_p = "Booking \(index)"
            $0.weight = 100
            $0.containers = (0...(index % 2)).map { _ in
                .with {
                    $0.customerID = "cust"; $0.origin = "Felixstowe"
                }
            }
        }
        let deadline = ContinuousClock.now + .seconds(60)
        var attempt = 0
        while ContinuousClock.now < deadline {
            attempt += 1
            do {
                var options = CallOptions.defaults
                options.timeout = .seconds(15)
                return try await replicas[(index + attempt) % 2].withClient { client in
                    try await Consignment_ShippingService.Client(wrapping: client).createConsignment(
                        request, metadata: metadata, options: options
                    ).consignment
                }
            } catch let error as RPCError where [.resourceExhausted, .invalidArgument].contains(error.code) {
                return nil
            } catch {
                try? await Task.sleep(for: .milliseconds(200))
            }
        }
        return nil
    }
}
