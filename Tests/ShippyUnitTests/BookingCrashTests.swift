import Foundation
import GRPCCore
import JWTKit
import Logging
import ShippyDomain
import ShippyIdentity
import ShippyStorage
import ShippyTestSupport
import Testing

@testable import ConsignmentService

/// The booking use case with its process dying at every step, before the step takes effect or after it (its
/// answer lost), or stopped there until recovery has run; then time passes, the vessel sweep and recovery run,
/// and a retry with the same key comes (`crashScenario`). The invariant must hold whatever the step and whichever
/// of sweep and recovery comes first.
@Suite struct BookingCrashTests {
    /// How the attempt ends when nothing dies: booked, or refused for want of room (the compensation path).
    enum Path: String, CaseIterable {
        case booked, refused
    }

    static let owner = "a0000000-0000-4000-8000-00000000000a"

    static func caller() async throws -> Caller {
        let signer = await TokenSigner(
            privateKey: ES256PrivateKey(), issuer: "shippy-user-service", audience: "shippy", lifetime: .seconds(600))
        let user = User(id: owner, name: "Ann", company: "Acme", email: "ann@example.com")
        let (token, claims) = try await signer.signed(user)
        return Caller(claims: claims, token: token)
    }

    static func admin() async throws -> Caller {
        let signer = await TokenSigner(
            privateKey: ES256PrivateKey(), issuer: "shippy-user-service", audience: "shippy", lifetime: .seconds(600))
        let user = User(id: "d0000000-0000-4000-8000-00000000000d", name: "Ada", company: "Shippy", email: "ada@x.org")
        let (token, claims) = try await signer.signed(user, roles: [.user, .admin])
        return Caller(claims: claims, token: token)
    }

    /// Steps of a cancel: reading the record, marking it cancelling, vessel-service's Cancel, marking it cancelled;
    /// one more reaches no step.
    @Test(arguments: CrashPlan.Moment.allCases, [false, true])
    func aCancelIsFinishedNeverUndoneAfterACrashAtEveryStep(moment: CrashPlan.Moment, forced: Bool) async throws {
        let owner = try await Self.caller()
        let caller = forced ? try await Self.admin() : owner
        for crashAt in 1...5 {
            let store = InMemoryConsignmentRepository()
            let violations = try await cancelScenario(
                crashAt: crashAt, moment, owner: owner, caller: caller,
                stores: BookingStores(
                    vessels: InMemoryVesselRepository(), consignments: store, records: { await store.all() }),
                make: ConsignmentBooking.process)
            #expect(violations.isEmpty, "\(violations)")
        }
    }

    static func fleet(for path: Path) -> [Vessel] {
        [Vessel(id: "v1", name: "Small", capacity: path == .booked ? 10 : 2, maxWeight: 100_000)]
    }

    static func consignment() -> Consignment {
        Consignment(
            description: "Three containers", weight: 30_000,
            containers: (1...3).map { Container(customerID: "cust\($0)", origin: "Derby") })
    }

    /// Steps of an attempt: begin, the quota's sum, Book, Confirm (or Release), then marking the record; one more
    /// reaches no step.
    static let steps = Array(1...6)

    @Test(arguments: Path.allCases, CrashPlan.Moment.allCases)
    func theInvariantHoldsAfterACrashAtEveryStep(path: Path, moment: CrashPlan.Moment) async throws {
        let caller = try await Self.caller()
        for crashAt in Self.steps {
            for sweepFirst in [false, true] {
                let store = InMemoryConsignmentRepository()
                let (violations, retryBooked) = try await crashScenario(
                    crashAt: crashAt, moment, sweepFirst: sweepFirst, room: path == .booked ? 10 : 2, caller: caller,
                    stores: BookingStores(
                        vessels: InMemoryVesselRepository(), consignments: store, records: { await store.all() }),
                    make: ConsignmentBooking.process)
                #expect(violations.isEmpty, "\(violations)")
                #expect(retryBooked == (path == .booked), "crash \(moment) at step \(crashAt)")
            }
        }
    }

    @Test func recoveryWithinTheReservationsLifetimeConfirmsWhatACrashLeftReserved() async throws {
        let caller = try await Self.caller()
        let vessels = InMemoryVesselRepository(Self.fleet(for: .booked))
        let store = InMemoryConsignmentRepository()
        let clock = TestClock()
        // Dies as Confirm is sent (after begin, the quota's sum and Book): the reservation holds, the record is pending.
        let plan = CrashPlan(crashAt: 4, .before)
        let dying = ConsignmentBooking(
            consignments: CrashingConsignmentRepository(store, plan),
            vessels: CrashingVesselBooker(RepositoryVesselBooker(vessels, clock: clock), plan),
            staleAfter: .seconds(30), logger: Logger(label: "dying"), now: { clock.now })
        await #expect(throws: ShippyError.self) {
            _ = try await dying.create(Self.consignment(), key: nil, caller: caller)
        }
        let survivor = ConsignmentBooking(
            consignments: store, vessels: RepositoryVesselBooker(vessels, clock: clock), staleAfter: .seconds(30),
            logger: Logger(label: "survivor"), now: { clock.now })
        #expect(try await survivor.recoverStalled() == 0, "a young attempt is left to its own call")
        clock.advance(by: .seconds(31))
        #expect(try await survivor.recoverStalled() == 1)
        let records = await store.all()
        #expect(records.map(\.status) == [.booked] && records[0].credential.isEmpty)
        #expect(try await vessels.booking(consignmentID: records[0].id)?.state == .confirmed)
    }

    @Test func aLateBookOfAnAttemptThatRecoveryGaveUpTakesNoRoom() async throws {
        let vessels = InMemoryVesselRepository(Self.fleet(for: .booked))
        let clock = TestClock()
        let booker = RepositoryVesselBooker(vessels, clock: clock)
        // Recovery found attempt 1 never booked and released it; then its Book arrives.
        try await booker.release(consignmentID: "c", attempt: 1, credential: Self.owner)
        let late = try await booker.book(
            consignmentID: "c", attempt: 1, specification: try VesselSpecification(capacity: 3, maxWeight: 10),
            credential: Self.owner)
        #expect(late.state == .released)
        #expect(try await vessels.list(PageRequest()).items[0].roomCapacity == 10)
        await #expect(throws: ShippyError.self) {
            _ = try await booker.confirm(consignmentID: "c", attempt: 1, credential: Self.owner)
        }
        // The next attempt books.
        let next = try await booker.book(
            consignmentID: "c", attempt: 2, specification: try VesselSpecification(capacity: 3, maxWeight: 10),
            credential: Self.owner)
        #expect(next.state == .reserved && next.attempt == 2)
        await #expect(throws: ShippyError.self) {
            _ = try await booker.book(
                consignmentID: "c", attempt: 1, specification: try VesselSpecification(capacity: 3, maxWeight: 10),
                credential: Self.owner)
        }
    }
}

extension ConsignmentBooking {
    /// The use case of a crash scenario: key `order-1`, recovery after 30 s, time from the scenario's clock, and a
    /// quota exactly the size of the scenario's consignment (so that its own record is counted once, not twice).
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
}
