import GRPCCore
import GRPCInProcessTransport
import Logging
import ShippyContracts
import ShippyDomain
import ShippyRuntime
import ShippyStorage
import Testing

@testable import VesselService

/// The vessel handler through grpc-swift's in-process transport, over the in-memory repository.
@Suite struct VesselHandlerTests {
    typealias Client = Vessel_VesselService.Client<InProcessTransport.Client>

    func withService<T: Sendable>(
        _ repository: any VesselRepository = InMemoryVesselRepository(Vessel.defaultFleet),
        _ body: @Sendable (Client) async throws -> T
    ) async throws -> T {
        let transport = InProcessTransport()
        let handler = VesselServiceHandler(repository: repository, logger: Logger(label: "test"))
        return try await withGRPCServer(transport: transport.server, services: [handler]) { _ in
            try await withGRPCClient(transport: transport.client) { client in
                try await body(Client(wrapping: client))
            }
        }
    }


    @Test func findAvailableReturnsTheSmallestVesselThatFits() async throws {
        let vessel = try await withService { client in
            try await client.findAvailable(.with { $0.capacity = 3; $0.maxWeight = 55_000 }).vessel
        }
        #expect(vessel.id == "vessel003")
        #expect(vessel.capacity >= 3 && vessel.maxWeight >= 55_000 && vessel.available)
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
                _ = try await client.findAvailable(.with { $0.capacity = 5000; $0.maxWeight = 1 })
            }
        }
    }

    @Test func createAssignsAnIdAndTheVesselIsThenFound() async throws {
        let (created, found) = try await withService(InMemoryVesselRepository()) { client in
            let response = try await client.create(.with { $0.name = "Kestrel"; $0.capacity = 7; $0.maxWeight = 900; $0.available = true })
            let found = try await client.findAvailable(.with { $0.capacity = 7; $0.maxWeight = 900 })
            return (response, found.vessel)
        }
        #expect(created.created)
        #expect(!created.vessel.id.isEmpty)
        #expect(found == created.vessel)
    }

    @Test func existingIdIsAlreadyExists() async throws {
        try await withService { client in
            await expectStatus(.alreadyExists, "vessel001") {
                _ = try await client.create(.with { $0.id = "vessel001"; $0.name = "Twin"; $0.capacity = 1; $0.maxWeight = 1 })
            }
        }
    }

    @Test func invalidVesselIsInvalidArgument() async throws {
        try await withService { client in
            await expectStatus(.invalidArgument, "name must not be empty") {
                _ = try await client.create(.with { $0.capacity = 1; $0.maxWeight = 1 })
            }
            await expectStatus(.invalidArgument, "max_weight must be greater than 0") {
                _ = try await client.create(.with { $0.name = "Raft"; $0.capacity = 1 })
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

/// A repository whose store is down, as `MongoClient` reports it.
struct UnreachableVesselRepository: VesselRepository {
    func findAvailable(_ specification: VesselSpecification) async throws(ShippyError) -> Vessel? {
        throw .unavailable("MongoDB is unavailable; try again shortly")
    }
    func create(_ vessel: Vessel) async throws(ShippyError) { throw .unavailable("MongoDB is unavailable") }
    func seedIfEmpty(_ fleet: [Vessel]) async throws(ShippyError) -> Int { throw .unavailable("MongoDB is unavailable") }
}
