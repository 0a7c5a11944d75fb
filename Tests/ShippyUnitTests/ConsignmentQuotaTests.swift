import JWTKit
import Logging
import ShippyDomain
import ShippyIdentity
import ShippyStorage
import ShippyTestSupport
import Synchronization
import Testing

@testable import ConsignmentService

/// Fair use of the fleet: a consignment's weight is plausible, and one user's open consignments hold at most the
/// quota, also when their calls race.
@Suite struct ConsignmentQuotaTests {
    static func consignment(containers: Int, weight: Int32) -> Consignment {
        Consignment(
            description: "d", weight: weight,
            containers: Array(repeating: Container(customerID: "c", origin: "o"), count: containers))
    }

    static func caller(_ id: String) async throws -> Caller {
        let signer = await TokenSigner(
            privateKey: ES256PrivateKey(), issuer: "shippy-user-service", audience: "shippy", lifetime: .seconds(600))
        let (token, claims) = try await signer.signed(
            User(id: id, name: "Ann", company: "Acme", email: "\(id.prefix(8))@example.com"))
        return Caller(claims: claims, token: token)
    }

    /// A booking use case over in-memory stores with one roomy vessel, and a quota the test may change.
    final class Fixture: Sendable {
        let store = InMemoryConsignmentRepository()
        let vessels = InMemoryVesselRepository([
            Vessel(id: "v1", name: "Roomy", capacity: 100_000, maxWeight: 1_000_000_000)
        ])
        let quota = Mutex(ConsignmentQuota(containers: 10, weight: 100_000))

        var booking: ConsignmentBooking {
            ConsignmentBooking(
                consignments: store, vessels: RepositoryVesselBooker(vessels, clock: TestClock()),
                staleAfter: .seconds(30), logger: Logger(label: "quota"), quota: { self.quota.withLock { $0 } })
        }

        /// Containers and kg taken on the vessel.
        func taken() async throws -> Load {
            let vessel = try #require(try await vessels.list(PageRequest()).items.first)
            return Load(
                containers: Int(vessel.capacity - vessel.roomCapacity),
                weight: Int(vessel.maxWeight - vessel.roomWeight))
        }
    }

    @Test func aContainerWeighsAtMostAnISOContainersMaximumGrossMass() throws {
        try Self.consignment(containers: 3, weight: 3 * 30_480).validate()
        #expect(
            throws: ShippyError.invalidArgument(
                "weight must be at most 30480 kg per container (an ISO container's maximum gross mass), so at most "
                    + "91440 kg for 3 (got 91441)")
        ) {
            try Self.consignment(containers: 3, weight: 3 * 30_480 + 1).validate()
        }
        // The report that opened the issue: one container "weighing" 49,000,000 kg.
        #expect(throws: ShippyError.self) { try Self.consignment(containers: 1, weight: 49_000_000).validate() }
        try Self.consignment(containers: Consignment.maximumContainers, weight: Consignment.maximumWeight).validate()
        #expect(Consignment.maximumWeight == 30_480_000)
    }

    @Test func aBookingBeyondTheQuotaIsRefusedSayingWhyAndTakesNothing() async throws {
        let fixture = Fixture()
        let ann = try await Self.caller("a0000000-0000-4000-8000-00000000000a")
        _ = try await fixture.booking.create(Self.consignment(containers: 6, weight: 60_000), key: nil, caller: ann)
        let refused = await #expect(throws: ShippyError.self) {
            _ = try await fixture.booking.create(Self.consignment(containers: 5, weight: 100), key: nil, caller: ann)
        }
        #expect(refused?.code == .resourceExhausted)
        #expect(
            refused?.message
                == "this consignment (5 containers, 100 kg) does not fit your quota: your open consignments hold 6 of "
                + "10 containers and 60000 of 100000 kg; ship less, or ask an admin to raise the quota")
        #expect(try await fixture.taken() == Load(containers: 6, weight: 60_000))
        #expect(await fixture.store.all().map(\.status) == [.booked, .abandoned])
        #expect(await fixture.store.held(by: ann.userID) == Load(containers: 6, weight: 60_000))

        // Kilograms count as containers do; what fits exactly is taken.
        await #expect(throws: ShippyError.self) {
            _ = try await fixture.booking.create(Self.consignment(containers: 1, weight: 40_001), key: nil, caller: ann)
        }
        _ = try await fixture.booking.create(Self.consignment(containers: 4, weight: 40_000), key: nil, caller: ann)
        #expect(try await fixture.taken() == Load(containers: 10, weight: 100_000))
    }

    @Test func theQuotaIsEachUsersAndFollowsTheConfiguration() async throws {
        let fixture = Fixture()
        let ann = try await Self.caller("a0000000-0000-4000-8000-00000000000a")
        let bob = try await Self.caller("b0000000-0000-4000-8000-00000000000b")
        _ = try await fixture.booking.create(Self.consignment(containers: 10, weight: 10), key: nil, caller: ann)
        _ = try await fixture.booking.create(Self.consignment(containers: 10, weight: 10), key: nil, caller: bob)
        await #expect(throws: ShippyError.self) {
            _ = try await fixture.booking.create(Self.consignment(containers: 1, weight: 1), key: nil, caller: ann)
        }
        fixture.quota.withLock { $0 = ConsignmentQuota(containers: 11, weight: 100_000) }
        _ = try await fixture.booking.create(Self.consignment(containers: 1, weight: 1), key: nil, caller: ann)
        fixture.quota.withLock { $0 = ConsignmentQuota(containers: 5, weight: 100_000) }
        await #expect(throws: ShippyError.self) {
            _ = try await fixture.booking.create(Self.consignment(containers: 1, weight: 1), key: nil, caller: bob)
        }
        // Lowering it gives nothing back.
        #expect(try await fixture.taken() == Load(containers: 21, weight: 21))
    }

    @Test func aCancelledConsignmentHoldsNoneOfTheQuota() async throws {
        let fixture = Fixture()
        let ann = try await Self.caller("a0000000-0000-4000-8000-00000000000a")
        let full = try await fixture.booking.create(Self.consignment(containers: 10, weight: 10), key: nil, caller: ann)
        await #expect(throws: ShippyError.self) {
            _ = try await fixture.booking.create(Self.consignment(containers: 1, weight: 1), key: nil, caller: ann)
        }
        _ = try await fixture.booking.cancel(id: full.id, caller: ann)
        #expect(try await fixture.taken() == .zero)
        _ = try await fixture.booking.create(Self.consignment(containers: 10, weight: 10), key: nil, caller: ann)
    }

    /// The invariant: whatever calls race, the booked records of a user never hold more than the quota, and the
    /// room taken is what the booked records hold. Racing calls near the quota may all be refused (each counts
    /// the others in flight); afterwards the user can still book up to the quota exactly, as nothing refused holds
    /// anything.
    @Test func racingBookingsNeverHoldMoreThanTheQuota() async throws {
        let fixture = Fixture()
        let ann = try await Self.caller("a0000000-0000-4000-8000-00000000000a")
        let booking = fixture.booking
        let one = Self.consignment(containers: 1, weight: 1)
        let answeredOK = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<40 {
                group.addTask { (try? await booking.create(one, key: nil, caller: ann)) != nil }
            }
            return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        var booked = await fixture.store.all().filter { $0.status == .booked }.count
        #expect(booked == answeredOK && booked <= 10, "\(booked) booked, \(answeredOK) answered OK")
        #expect(try await fixture.taken() == Load(containers: booked, weight: booked))
        #expect(await fixture.store.all().allSatisfy { $0.status != .pending })

        while (try? await booking.create(one, key: nil, caller: ann)) != nil { booked += 1 }
        #expect(booked == 10)
        #expect(try await fixture.taken() == Load(containers: 10, weight: 10))
    }
}
