import GRPCCore
import GRPCInProcessTransport
import JWTKit
import Logging
import ShippyContracts
import ShippyDomain
import ShippyIdentity
import ShippyMongo
import ShippyRuntime
import ShippyStorage
import ShippyTestSupport
import Testing

@testable import VesselService

/// The vessel handler through grpc-swift's in-process transport, over the in-memory repository.
@Suite struct VesselHandlerTests {
    typealias Client = Vessel_VesselService.Client<InProcessTransport.Client>

    static let ann = User(
        id: "a0000000-0000-4000-8000-00000000000a", name: "Ann", company: "Acme", email: "ann@example.com")
    static let bob = User(
        id: "b0000000-0000-4000-8000-00000000000b", name: "Bob", company: "Acme", email: "bob@example.com")
    static let key = ES256PrivateKey()

    static func signer() async -> TokenSigner {
        await TokenSigner(privateKey: key, issuer: "shippy-user-service", audience: "shippy", lifetime: .seconds(600))
    }

    /// Metadata with a token for `user`, an admin when `admin`.
    static func bearer(_ user: User, admin: Bool = false) async throws -> Metadata {
        ["authorization": "Bearer \(try await signer().sign(user, roles: admin ? [.admin] : [.user]))"]
    }

    /// The handler behind the same interceptor as in production.
    func withService<T: Sendable>(
        _ repository: any VesselRepository = InMemoryVesselRepository(Vessel.defaultFleet),
        _ body: @Sendable (Client) async throws -> T
    ) async throws -> T {
        let verifier = await Self.signer().verifier
        return try await withRunningApp({ configuration in
            VesselServiceApp.build(
                configuration: configuration, repository: repository, verifier: verifier, dependencies: [],
                logger: Logger(label: "test"))
        }) { _, client in try await body(Client(wrapping: client)) }
    }

    @Test func findAvailableReturnsTheSmallestVesselThatFits() async throws {
        let vessel = try await withService { client in
            try await client.findAvailable(
                .with {
                    $0.capacity = 3; $0.maxWeight = 55_000
                }
            ).vessel
        }
        #expect(vessel.id == "vessel003")
        #expect(vessel.capacity >= 3 && vessel.maxWeight >= 55_000 && vessel.available)
    }

    @Test func whoAddedAVesselIsAnAdminsToKnow() async throws {
        let repository = InMemoryVesselRepository([
            Vessel(id: "v", name: "V", capacity: 10, maxWeight: 1_000, ownerID: Self.ann.id)
        ])
        let (asUser, asAdmin, found) = try await withService(repository) { client in
            (
                try await client.list(.init(), metadata: try await Self.bearer(Self.bob)).vessels,
                try await client.list(.init(), metadata: try await Self.bearer(Self.bob, admin: true)).vessels,
                try await client.findAvailable(
                    .with {
                        $0.capacity = 1; $0.maxWeight = 1
                    }
                ).vessel
            )
        }
        #expect(asUser.map(\.ownerID) == [""], "a user does not learn an admin's user id")
        #expect(found.id == "v" && found.ownerID == "", "nor does anyone through the public FindAvailable")
        #expect(asAdmin.map(\.ownerID) == [Self.ann.id])
    }

    @Test func negativeSpecificationIsInvalidArgument() async throws {
        try await withService { client in
            await expectStatus(.invalidArgument, "capacity must not be negative") {
                _ = try await client.findAvailable(.with { $0.capacity = -1 })
            }
        }
    }

    @Test func noVesselFitsIsResourceExhaustedNamingTheSpecification() async throws {
        try await withService { client in
            await expectStatus(.resourceExhausted, "no available vessel can take capacity 5000, max_weight 1") {
                _ = try await client.findAvailable(
                    .with {
                        $0.capacity = 5000; $0.maxWeight = 1
                    })
            }
        }
    }

    @Test func createAssignsAnIdAndTheVesselIsThenFound() async throws {
        let (created, found) = try await withService(InMemoryVesselRepository()) { client in
            let response = try await client.create(
                .with {
                    $0.name = "Kestrel"; $0.capacity = 7; $0.maxWeight = 900; $0.available = true; $0.ownerID = "forged"
                },
                metadata: try await Self.bearer(Self.ann, admin: true))
            let found = try await client.findAvailable(
                .with {
                    $0.capacity = 7; $0.maxWeight = 900
                })
            return (response, found.vessel)
        }
        #expect(created.created)
        #expect(!created.vessel.id.isEmpty)
        #expect(created.vessel.ownerID == Self.ann.id, "the server sets the owner from the token")
        #expect(created.vessel.roomCapacity == 7 && created.vessel.roomWeight == 900)
        var anonymous = created.vessel
        anonymous.ownerID = ""
        #expect(found == anonymous, "the same vessel, without who added it")
    }

    @Test func existingIdIsAlreadyExists() async throws {
        try await withService { client in
            let admin = try await Self.bearer(Self.ann, admin: true)
            await expectStatus(.alreadyExists, "vessel001") {
                _ = try await client.create(
                    .with {
                        $0.id = "vessel001"; $0.name = "Twin"; $0.capacity = 1; $0.maxWeight = 1
                    }, metadata: admin)
            }
        }
    }

    @Test func invalidVesselIsInvalidArgument() async throws {
        try await withService { client in
            let admin = try await Self.bearer(Self.ann, admin: true)
            await expectStatus(.invalidArgument, "name must not be empty") {
                _ = try await client.create(
                    .with {
                        $0.capacity = 1; $0.maxWeight = 1
                    }, metadata: admin)
            }
            await expectStatus(.invalidArgument, "max_weight must be greater than 0") {
                _ = try await client.create(
                    .with {
                        $0.name = "Raft"; $0.capacity = 1
                    }, metadata: admin)
            }
            await expectStatus(.invalidArgument, "must not contain control characters") {
                _ = try await client.create(
                    .with {
                        $0.name = "Raft\u{1b}[31m"; $0.capacity = 1; $0.maxWeight = 1
                    }, metadata: admin)
            }
        }
    }

    @Test func storeDownIsUnavailable() async throws {
        try await withService(UnreachableVesselRepository()) { client in
            await expectStatus(.unavailable, "MongoDB is unavailable") {
                _ = try await client.findAvailable(.with { $0.capacity = 1 })
            }
        }
    }
}

/// The booking methods through the handler, over the in-memory repository.
extension VesselHandlerTests {
    static func booking(_ id: String, containers: Int32 = 3, weight: Int32 = 55_000) -> Vessel_BookingRequest {
        .with {
            $0.consignmentID = id; $0.containers = containers; $0.weight = weight
        }
    }

    @Test func bookingTakesRoomSoTheSameVesselIsNotOfferedOnceFull() async throws {
        let repository = InMemoryVesselRepository([Vessel(id: "small", name: "Small", capacity: 4, maxWeight: 100)])
        try await withService(repository) { client in
            let ann = try await Self.bearer(Self.ann)
            let first = try await client.book(Self.booking("c1", containers: 3, weight: 60), metadata: ann)
            #expect(first.vesselID == "small" && first.state == .reserved && first.ownerID == Self.ann.id)
            await expectStatus(.resourceExhausted, "no vessel has room") {
                _ = try await client.book(Self.booking("c2", containers: 2, weight: 10), metadata: ann)
            }
            await expectStatus(.resourceExhausted, "no available vessel can take capacity 2") {
                _ = try await client.findAvailable(
                    .with {
                        $0.capacity = 2; $0.maxWeight = 10
                    })
            }
            let fleet = try await client.list(ListRequestAll(), metadata: ann).vessels
            #expect(fleet.map(\.roomCapacity) == [1] && fleet.map(\.roomWeight) == [40])
        }
    }

    @Test func bookingTheSameConsignmentTwiceBooksOnce() async throws {
        let repository = InMemoryVesselRepository([Vessel(id: "v", name: "V", capacity: 10, maxWeight: 1_000)])
        try await withService(repository) { client in
            let ann = try await Self.bearer(Self.ann)
            let first = try await client.book(Self.booking("c1", containers: 3, weight: 100), metadata: ann)
            let again = try await client.book(Self.booking("c1", containers: 3, weight: 100), metadata: ann)
            #expect(first == again)
            #expect(try await client.list(ListRequestAll(), metadata: ann).vessels.first?.roomCapacity == 7)
            await expectStatus(.permissionDenied, "booked by another user") {
                _ = try await client.book(
                    Self.booking("c1", containers: 3, weight: 100), metadata: try await Self.bearer(Self.bob))
            }
        }
    }

    @Test func confirmedBookingsStayAndReleasedOnesGiveTheirRoomBack() async throws {
        let repository = InMemoryVesselRepository([Vessel(id: "v", name: "V", capacity: 10, maxWeight: 1_000)])
        try await withService(repository) { client in
            let ann = try await Self.bearer(Self.ann)
            let bob = try await Self.bearer(Self.bob)
            _ = try await client.book(Self.booking("kept", containers: 2, weight: 100), metadata: ann)
            _ = try await client.book(Self.booking("dropped", containers: 5, weight: 100), metadata: ann)
            await expectStatus(.permissionDenied, "belongs to another user") {
                _ = try await client.confirm(.with { $0.consignmentID = "kept" }, metadata: bob)
            }
            #expect(try await client.confirm(.with { $0.consignmentID = "kept" }, metadata: ann).state == .confirmed)
            #expect(try await client.release(.with { $0.consignmentID = "dropped" }, metadata: ann).state == .released)
            #expect(try await client.release(.with { $0.consignmentID = "dropped" }, metadata: ann).state == .released)
            await expectStatus(.failedPrecondition, "is confirmed and cannot be released") {
                _ = try await client.release(.with { $0.consignmentID = "kept" }, metadata: ann)
            }
            await expectStatus(.failedPrecondition, "expired or was released") {
                _ = try await client.confirm(.with { $0.consignmentID = "dropped" }, metadata: ann)
            }
            await expectStatus(.notFound, "no booking for consignment nothing") {
                _ = try await client.confirm(.with { $0.consignmentID = "nothing" }, metadata: ann)
            }
            #expect(try await client.list(ListRequestAll(), metadata: ann).vessels.first?.roomCapacity == 8)
        }
    }

    @Test func createNeedsAnAdminAndBookingNeedsAToken() async throws {
        try await withService { client in
            await expectStatus(.permissionDenied, "only an admin may register vessels") {
                _ = try await client.create(
                    .with {
                        $0.name = "Mine"; $0.capacity = 1; $0.maxWeight = 1
                    }, metadata: try await Self.bearer(Self.ann))
            }
            await expectStatus(.unauthenticated, "missing token") {
                _ = try await client.create(
                    .with {
                        $0.name = "Mine"; $0.capacity = 1; $0.maxWeight = 1
                    })
            }
            await expectStatus(.unauthenticated, "missing token") { _ = try await client.book(Self.booking("c1")) }
            // The original contract's query stays public.
            _ = try await client.findAvailable(.with { $0.capacity = 1 })
        }
    }
}

/// A list request for the first page, at the default size.
func ListRequestAll() -> Vessel_ListRequest { Vessel_ListRequest() }

/// A repository whose store is down, as `MongoClient` reports it.
struct UnreachableVesselRepository: PartialVesselRepositoryFake {
    func findAvailable(_ specification: VesselSpecification) async throws(ShippyError) -> Vessel? {
        throw .unavailable("MongoDB is unavailable; try again shortly")
    }
    func create(_ vessel: Vessel) async throws(ShippyError) { throw .unavailable("MongoDB is unavailable") }
    func seedIfEmpty(_ fleet: [Vessel]) async throws(ShippyError) -> Int {
        throw .unavailable("MongoDB is unavailable")
    }
}
