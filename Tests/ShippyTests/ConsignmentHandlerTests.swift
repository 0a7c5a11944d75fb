import Foundation
import GRPCCore
import GRPCInProcessTransport
import JWTKit
import Logging
import ShippyContracts
import ShippyDomain
import ShippyIdentity
import ShippyRuntime
import ShippyStorage
import Testing

@testable import ConsignmentService

/// A vessel finder that answers as the test says.
struct ScriptedVesselFinder: VesselFinder {
    let answer: @Sendable (VesselSpecification) async throws(ShippyError) -> String

    func findAvailable(_ specification: VesselSpecification) async throws(ShippyError) -> String {
        try await answer(specification)
    }
}

/// The consignment handler and auth interceptor through the in-process transport: every status code.
@Suite struct ConsignmentHandlerTests {
    typealias Client = Consignment_ShippingService.Client<InProcessTransport.Client>

    static let ann = User(id: "a0000000-0000-4000-8000-00000000000a", name: "Ann", company: "Acme", email: "ann@example.com")
    static let bob = User(id: "b0000000-0000-4000-8000-00000000000b", name: "Bob", company: "Acme", email: "bob@example.com")
    static let sample = Consignment_Consignment.with {
        $0.description_p = "This is a test consignment"
        $0.weight = 55_000
        $0.userID = "someone-else"
        $0.containers = ["cust001", "cust002", "cust005"].map { customer in
            .with { $0.customerID = customer; $0.origin = "Manchester, United Kingdom"; $0.userID = "user001" }
        }
    }

    let repository = InMemoryConsignmentRepository()
    let key = ES256PrivateKey()

    func withService<T: Sendable>(
        vessels: ScriptedVesselFinder = ScriptedVesselFinder { _ throws(ShippyError) in "vessel003" },
        _ body: @Sendable (Client, TokenSigner) async throws -> T
    ) async throws -> T {
        let signer = await TokenSigner(privateKey: key, issuer: "shippy-user-service", audience: "shippy", lifetime: .seconds(600))
        let handler = ConsignmentServiceHandler(repository: repository, vessels: vessels, logger: Logger(label: "test"))
        let interceptor = AuthInterceptor(verifier: signer.verifier, protecting: Consignment_ShippingService.descriptor)
        let transport = InProcessTransport()
        return try await withGRPCServer(transport: transport.server, services: [handler], interceptors: [interceptor]) { _ in
            try await withGRPCClient(transport: transport.client) { client in
                try await body(Client(wrapping: client), signer)
            }
        }
    }

    func bearer(_ signer: TokenSigner, _ user: User) async throws -> Metadata {
        ["authorization": "Bearer \(try await signer.sign(user))"]
    }


    @Test func createdConsignmentIsOwnedByTheCallerWhateverTheClientSent() async throws {
        let (created, listed) = try await withService { client, signer in
            let ann = try await bearer(signer, Self.ann)
            let created = try await client.createConsignment(Self.sample, metadata: ann)
            let listed = try await client.getConsignments(Consignment_GetRequest(), metadata: ann)
            return (created, listed.consignments)
        }
        #expect(created.created)
        #expect(!created.consignment.id.isEmpty && created.consignment.vesselID == "vessel003")
        #expect(created.consignment.userID == Self.ann.id)
        #expect(created.consignment.containers.allSatisfy { $0.userID == Self.ann.id })
        #expect(listed == [created.consignment])
    }

    @Test func aUserListsOnlyTheirOwnConsignments() async throws {
        let (annsList, bobsList) = try await withService { client, signer in
            let ann = try await bearer(signer, Self.ann)
            let bob = try await bearer(signer, Self.bob)
            _ = try await client.createConsignment(Self.sample, metadata: ann)
            _ = try await client.createConsignment(Self.sample, metadata: ann)
            return (
                try await client.getConsignments(Consignment_GetRequest(), metadata: ann).consignments,
                try await client.getConsignments(Consignment_GetRequest(), metadata: bob).consignments
            )
        }
        #expect(annsList.count == 2 && annsList.allSatisfy { $0.userID == Self.ann.id })
        #expect(bobsList.isEmpty)
    }

    @Test func vesselServiceIsAskedForASlotPerContainerAndTheWeight() async throws {
        let finder = ScriptedVesselFinder { specification throws(ShippyError) in
            guard specification.capacity == 3, specification.maxWeight == 55_000 else {
                throw ShippyError.invalidArgument("asked for \(specification)")
            }
            return "vessel003"
        }
        let created = try await withService(vessels: finder) { client, signer in
            try await client.createConsignment(Self.sample, metadata: try await bearer(signer, Self.ann))
        }
        #expect(created.consignment.vesselID == "vessel003")
    }

    @Test func missingMalformedExpiredOrForeignTokenIsUnauthenticated() async throws {
        try await withService { client, signer in
            await expectStatus(.unauthenticated, "missing token") { _ = try await client.getConsignments(Consignment_GetRequest()) }
            for token in ["111", "111.111.111", "eyJhbGciOiJub25lIn0.e30."] {
                await expectStatus(.unauthenticated, "invalid token") {
                    _ = try await client.createConsignment(Self.sample, metadata: ["authorization": "Bearer \(token)"])
                }
            }
            let expired = try await signer.sign(Self.ann, now: Date().addingTimeInterval(-7200))
            await expectStatus(.unauthenticated, "expired") {
                _ = try await client.getConsignments(Consignment_GetRequest(), metadata: ["token": "\(expired)"])
            }
            let stranger = await TokenSigner(privateKey: ES256PrivateKey(), issuer: "shippy-user-service", audience: "shippy", lifetime: .seconds(60))
            let foreign = try await stranger.sign(Self.ann)
            await expectStatus(.unauthenticated, "not signed by a known key") {
                _ = try await client.getConsignments(Consignment_GetRequest(), metadata: ["authorization": "Bearer \(foreign)"])
            }
        }
        #expect(await repository.consignments(ownedBy: Self.ann.id).isEmpty)
    }

    @Test(arguments: [
        ("description", "description must not be empty"),
        ("weight", "weight must be greater than 0"),
        ("containers", "at least one container"),
        ("customer", "containers[1].customer_id must not be empty"),
        ("origin", "containers[2].origin must not be empty"),
    ])
    func invalidConsignmentIsInvalidArgument(broken: String, message: String) async throws {
        var request = Self.sample
        switch broken {
        case "description": request.description_p = "   "
        case "weight": request.weight = -1
        case "containers": request.containers = []
        case "customer": request.containers[1].customerID = ""
        default: request.containers[2].origin = ""
        }
        let invalid = request
        try await withService { client, signer in
            let ann = try await bearer(signer, Self.ann)
            await expectStatus(.invalidArgument, message) { _ = try await client.createConsignment(invalid, metadata: ann) }
        }
    }

    @Test func noVesselFitsPassesOnVesselServicesMessage() async throws {
        let finder = ScriptedVesselFinder { specification throws(ShippyError) in
            throw ShippyError(.resourceExhausted, "no available vessel can take \(specification)")
        }
        try await withService(vessels: finder) { client, signer in
            let ann = try await bearer(signer, Self.ann)
            await expectStatus(.resourceExhausted, "no available vessel can take capacity 3, max_weight 55000") {
                _ = try await client.createConsignment(Self.sample, metadata: ann)
            }
        }
    }

    @Test(arguments: [ShippyError.Code.unavailable, .deadlineExceeded])
    func vesselServiceDownOrSlowIsReportedNamingIt(code: ShippyError.Code) async throws {
        let finder = ScriptedVesselFinder { _ throws(ShippyError) in throw ShippyError(code, "vessel-service at 127.0.0.1:50052 is down") }
        try await withService(vessels: finder) { client, signer in
            let ann = try await bearer(signer, Self.ann)
            await expectStatus(code == .unavailable ? .unavailable : .deadlineExceeded, "vessel-service at 127.0.0.1:50052") {
                _ = try await client.createConsignment(Self.sample, metadata: ann)
            }
        }
        #expect(await repository.consignments(ownedBy: Self.ann.id).isEmpty)
    }

    @Test func realVesselFinderMapsAStoppedVesselServiceToUnavailableWithinItsDeadline() async throws {
        let port = try freePort()
        let vesselClient = try GRPCClientService(
            target: .ipv4(host: "127.0.0.1", port: port), serviceConfig: GRPCVesselFinder.serviceConfig)
        let finder = GRPCVesselFinder(client: vesselClient.client, address: "127.0.0.1:\(port)", timeout: .seconds(2))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await vesselClient.client.runConnections() }
            let started = ContinuousClock.now
            await #expect {
                _ = try await finder.findAvailable(try VesselSpecification(capacity: 1, maxWeight: 1))
            } throws: { error in
                guard let error = error as? ShippyError else { return false }
                return [.unavailable, .deadlineExceeded].contains(error.code) && error.message.contains("vessel-service at 127.0.0.1:\(port)")
            }
            // Bounded by the 2 s deadline, not hung; the margin is for a loaded machine.
            #expect(ContinuousClock.now - started < .seconds(10))
            vesselClient.client.beginGracefulShutdown()
            try await group.waitForAll()
        }
    }
}

@Suite struct ConsignmentDomainTests {
    @Test func bookingStampsTheOwnerOnTheConsignmentAndEveryContainer() {
        let consignment = Consignment(
            description: "d", weight: 1,
            containers: [Container(customerID: "c", origin: "o", userID: "forged"), Container(customerID: "c", origin: "o")],
            userID: "forged")
        let booked = consignment.booked(id: "id-1", vesselID: "v", owner: "owner-1")
        #expect(booked.id == "id-1" && booked.vesselID == "v" && booked.userID == "owner-1")
        #expect(booked.containers.map(\.userID) == ["owner-1", "owner-1"])
    }

    @Test func specificationAsksForASlotPerContainer() throws {
        let consignment = Consignment(description: "d", weight: 900, containers: Array(repeating: Container(customerID: "c", origin: "o"), count: 4))
        #expect(try consignment.specification == (try VesselSpecification(capacity: 4, maxWeight: 900)))
    }
}
