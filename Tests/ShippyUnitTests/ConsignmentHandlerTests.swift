import Foundation
import GRPCCore
import GRPCInProcessTransport
import JWTKit
import Logging
import ShippyConfiguration
import ShippyContracts
import ShippyDiscovery
import ShippyDomain
import ShippyIdentity
import ShippyRuntime
import ShippyStorage
import ShippyTestSupport
import Testing

@testable import ConsignmentService

/// A vessel booker that answers as the test says, then books on an in-memory vessel-service with one roomy
/// vessel, `vessel003`; it records what it was asked.
actor ScriptedVesselBooker: VesselBooker {
    private let answer: @Sendable (VesselSpecification) throws(ShippyError) -> Void
    private let vessels = RepositoryVesselBooker(
        InMemoryVesselRepository([Vessel(id: "vessel003", name: "Roomy", capacity: 1_000_000, maxWeight: 1_000_000_000)]
        ),
        clock: TestClock())
    private var confirmFailure: ShippyError?
    private(set) var booked: [String] = []
    private(set) var confirmed: [String] = []
    private(set) var released: [String] = []
    private(set) var cancelled: [String] = []

    init(answer: @escaping @Sendable (VesselSpecification) throws(ShippyError) -> Void = { _ throws(ShippyError) in }) {
        self.answer = answer
    }

    func failConfirms(with error: ShippyError?) {
        confirmFailure = error
    }

    func book(
        consignmentID: String, attempt: Int64, specification: VesselSpecification, credential: String
    ) async throws(ShippyError) -> Booking {
        booked.append(consignmentID)
        try answer(specification)
        return try await vessels.book(
            consignmentID: consignmentID, attempt: attempt, specification: specification, credential: credential)
    }

    func confirm(consignmentID: String, attempt: Int64, credential: String) async throws(ShippyError) -> Booking {
        if let confirmFailure { throw confirmFailure }
        let booking = try await vessels.confirm(consignmentID: consignmentID, attempt: attempt, credential: credential)
        confirmed.append(consignmentID)
        return booking
    }

    func release(consignmentID: String, attempt: Int64, credential: String) async throws(ShippyError) {
        try await vessels.release(consignmentID: consignmentID, attempt: attempt, credential: credential)
        released.append(consignmentID)
    }

    func cancel(consignmentID: String, credential: String) async throws(ShippyError) -> Booking {
        let booking = try await vessels.cancel(consignmentID: consignmentID, credential: credential)
        cancelled.append(consignmentID)
        return booking
    }
}

/// The consignment handler and auth interceptor through the in-process transport: every status code.
@Suite struct ConsignmentHandlerTests {
    typealias Client = Consignment_ShippingService.Client<InProcessTransport.Client>

    static let ann = User(
        id: "a0000000-0000-4000-8000-00000000000a", name: "Ann", company: "Acme", email: "ann@example.com")
    static let bob = User(
        id: "b0000000-0000-4000-8000-00000000000b", name: "Bob", company: "Acme", email: "bob@example.com")
    static let sample = sampleConsignment

    let repository = InMemoryConsignmentRepository()
    let key = ES256PrivateKey()

    func withService<T: Sendable>(
        vessels: ScriptedVesselBooker = ScriptedVesselBooker(),
        _ body: @Sendable (Client, TokenSigner) async throws -> T
    ) async throws -> T {
        let signer = await TokenSigner(
            privateKey: key, issuer: "shippy-user-service", audience: "shippy", lifetime: .seconds(600))
        return try await withRunningApp({ configuration in
            ConsignmentServiceApp.build(
                configuration: configuration,
                booking: ConsignmentBooking(
                    consignments: repository, vessels: vessels, staleAfter: .seconds(30), logger: Logger(label: "test")),
                verifier: signer.verifier, dependencies: [], logger: Logger(label: "test"))
        }) { _, client in try await body(Client(wrapping: client), signer) }
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
        let finder = ScriptedVesselBooker { specification throws(ShippyError) in
            guard specification.capacity == 3, specification.maxWeight == 55_000 else {
                throw ShippyError.invalidArgument("asked for \(specification)")
            }
        }
        let created = try await withService(vessels: finder) { client, signer in
            try await client.createConsignment(Self.sample, metadata: try await bearer(signer, Self.ann))
        }
        #expect(created.consignment.vesselID == "vessel003")
    }

    @Test func missingMalformedExpiredOrForeignTokenIsUnauthenticated() async throws {
        try await withService { client, signer in
            await expectStatus(.unauthenticated, "missing token") {
                _ = try await client.getConsignments(Consignment_GetRequest())
            }
            for token in ["111", "111.111.111", "eyJhbGciOiJub25lIn0.e30."] {
                await expectStatus(.unauthenticated, "invalid token") {
                    _ = try await client.createConsignment(Self.sample, metadata: ["authorization": "Bearer \(token)"])
                }
            }
            let expired = try await signer.sign(Self.ann, now: Date().addingTimeInterval(-7200))
            await expectStatus(.unauthenticated, "expired") {
                _ = try await client.getConsignments(Consignment_GetRequest(), metadata: ["token": "\(expired)"])
            }
            let stranger = await TokenSigner(
                privateKey: ES256PrivateKey(), issuer: "shippy-user-service", audience: "shippy", lifetime: .seconds(60)
            )
            let foreign = try await stranger.sign(Self.ann)
            await expectStatus(.unauthenticated, "not signed by a known key") {
                _ = try await client.getConsignments(
                    Consignment_GetRequest(), metadata: ["authorization": "Bearer \(foreign)"])
            }
        }
        #expect(await repository.consignments(ownedBy: Self.ann.id, page: PageRequest()).items.isEmpty)
    }

    @Test(arguments: [
        ("description", "description must not be empty"),
        ("weight", "weight must be greater than 0"),
        ("heavy", "weight must be at most 30480 kg per container"),
        ("containers", "at least one container"),
        ("customer", "containers[1].customer_id must not be empty"),
        ("origin", "containers[2].origin must not be empty"),
    ])
    func invalidConsignmentIsInvalidArgument(broken: String, message: String) async throws {
        var request = Self.sample
        switch broken {
        case "description": request.description_p = "   "
        case "weight": request.weight = -1
        case "heavy": request.weight = 3 * 30_480 + 1
        case "containers": request.containers = []
        case "customer": request.containers[1].customerID = ""
        default: request.containers[2].origin = ""
        }
        let invalid = request
        try await withService { client, signer in
            let ann = try await bearer(signer, Self.ann)
            await expectStatus(.invalidArgument, message) {
                _ = try await client.createConsignment(invalid, metadata: ann)
            }
        }
    }

    @Test func noVesselFitsPassesOnVesselServicesMessage() async throws {
        let finder = ScriptedVesselBooker { specification throws(ShippyError) in
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
        let finder = ScriptedVesselBooker { _ throws(ShippyError) in
            throw ShippyError(code, "vessel-service at 127.0.0.1:50052 is down")
        }
        try await withService(vessels: finder) { client, signer in
            let ann = try await bearer(signer, Self.ann)
            await expectStatus(
                code == .unavailable ? .unavailable : .deadlineExceeded, "vessel-service at 127.0.0.1:50052"
            ) {
                _ = try await client.createConsignment(Self.sample, metadata: ann)
            }
        }
        #expect(await repository.consignments(ownedBy: Self.ann.id, page: PageRequest()).items.isEmpty)
    }

    /// Bounded by the booker's 2 s deadline: a hang would meet the test's time limit.
    @Test(.timeLimit(.minutes(1)))
    func realVesselBookerMapsAStoppedVesselServiceToUnavailableWithinItsDeadline() async throws {
        let port = try freePort()
        let vesselClient = GRPCClientService(
            transport: try ServiceTransport(
                main: .ipv4(address: "127.0.0.1", port: port), serviceConfig: GRPCVesselBooker.serviceConfig))
        let booker = GRPCVesselBooker(client: vesselClient.client, timeout: LiveSetting(.seconds(2)))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await vesselClient.client.runConnections() }
            await #expect {
                _ = try await booker.book(
                    consignmentID: "c1", attempt: 1, specification: try VesselSpecification(capacity: 1, maxWeight: 1),
                    credential: "t")
            } throws: { error in
                guard let error = error as? ShippyError else { return false }
                return [.unavailable, .deadlineExceeded].contains(error.code)
                    && error.message.contains("vessel-service") && !error.message.contains("\(port)")
            }
            vesselClient.client.beginGracefulShutdown()
            try await group.waitForAll()
        }
    }
}

extension ConsignmentHandlerTests {
    static func keyed(_ metadata: Metadata, _ key: String) -> Metadata {
        var metadata = metadata
        metadata.addString(key, forKey: "idempotency-key")
        return metadata
    }

    @Test func aRetryWithTheSameKeyAnswersTheFirstConsignmentAndBooksOnce() async throws {
        let booker = ScriptedVesselBooker()
        let (first, second) = try await withService(vessels: booker) { client, signer in
            let ann = Self.keyed(try await bearer(signer, Self.ann), "order-42")
            let first = try await client.createConsignment(Self.sample, metadata: ann).consignment
            let second = try await client.createConsignment(Self.sample, metadata: ann).consignment
            return (first, second)
        }
        #expect(first == second)
        #expect(await booker.booked == [first.id], "the retry booked nothing")
        #expect(
            await repository.consignments(ownedBy: Self.ann.id, page: PageRequest()).items.map(\.consignment) == [
                first.toDomain
            ])
    }

    @Test func twentyConcurrentCallsWithTheSameKeyBookOnce() async throws {
        let booker = ScriptedVesselBooker()
        let answers = try await withService(vessels: booker) { client, signer in
            let ann = Self.keyed(try await bearer(signer, Self.ann), "order-20")
            return try await withThrowingTaskGroup(of: Consignment_Consignment.self) { group in
                for _ in 0..<20 {
                    group.addTask { try await client.createConsignment(Self.sample, metadata: ann).consignment }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
        }
        #expect(answers.count == 20 && Set(answers.map(\.id)).count == 1)
        #expect(await booker.booked.count == 1, "one Book for twenty calls")
        #expect(await repository.consignments(ownedBy: Self.ann.id, page: PageRequest()).items.count == 1)
    }

    @Test func theSameKeyFromAnotherUserIsAnotherConsignment() async throws {
        let (ann, bob) = try await withService { client, signer in
            (
                try await client.createConsignment(
                    Self.sample, metadata: Self.keyed(try await bearer(signer, Self.ann), "k")),
                try await client.createConsignment(
                    Self.sample, metadata: Self.keyed(try await bearer(signer, Self.bob), "k"))
            )
        }
        #expect(ann.consignment.id != bob.consignment.id)
    }

    @Test func aBookingThatCannotBeConfirmedIsUndone() async throws {
        let booker = ScriptedVesselBooker()
        await booker.failConfirms(with: ShippyError(.failedPrecondition, "the reservation expired"))
        try await withService(vessels: booker) { client, signer in
            let ann = try await bearer(signer, Self.ann)
            await expectStatus(.unavailable, "lapsed before it could be confirmed") {
                _ = try await client.createConsignment(Self.sample, metadata: ann)
            }
        }
        #expect(await repository.consignments(ownedBy: Self.ann.id, page: PageRequest()).items.isEmpty)
        #expect(await booker.released == booker.booked, "the attempt was released")
    }

    @Test(arguments: ["", "has space", String(repeating: "k", count: 129), "naïve", "50%", "a,b"])
    func aMalformedIdempotencyKeyIsInvalidArgument(key: String) async throws {
        try await withService { client, signer in
            let ann = Self.keyed(try await bearer(signer, Self.ann), key)
            await expectStatus(.invalidArgument, "idempotency-key") {
                _ = try await client.createConsignment(Self.sample, metadata: ann)
            }
        }
    }

    @Test func controlCharactersAndOversizedConsignmentsAreRefusedAndNothingIsBooked() async throws {
        let booker = ScriptedVesselBooker()
        var injectedRequest = Self.sample
        injectedRequest.description_p = "Tools\r\nBcc: eve@example.com"
        var hugeRequest = Self.sample
        hugeRequest.containers = Array(repeating: Self.sample.containers[0], count: Consignment.maximumContainers + 1)
        let (injected, huge) = (injectedRequest, hugeRequest)
        try await withService(vessels: booker) { client, signer in
            let ann = try await bearer(signer, Self.ann)
            await expectStatus(.invalidArgument, "description must not contain control characters") {
                _ = try await client.createConsignment(injected, metadata: ann)
            }
            await expectStatus(.invalidArgument, "at most \(Consignment.maximumContainers) containers") {
                _ = try await client.createConsignment(huge, metadata: ann)
            }
        }
        #expect(await booker.booked.isEmpty)
    }

    @Test func listsArePagedAndOutOfRangePageSizesAreRefused() async throws {
        let (pages, ids) = try await withService { client, signer in
            let ann = try await bearer(signer, Self.ann)
            var ids: [String] = []
            for _ in 0..<5 { ids.append(try await client.createConsignment(Self.sample, metadata: ann).consignment.id) }
            var pages: [[String]] = []
            var token = ""
            repeat {
                let page = try await client.getConsignments(
                    .with {
                        $0.pageSize = 2; $0.pageToken = token
                    }, metadata: ann)
                pages.append(page.consignments.map(\.id))
                token = page.nextPageToken
            } while !token.isEmpty
            for size: Int32 in [-1, 1_000_000_000] {
                await expectStatus(.invalidArgument, "page_size") {
                    _ = try await client.getConsignments(.with { $0.pageSize = size }, metadata: ann)
                }
            }
            await expectStatus(.invalidArgument, "page_token") {
                _ = try await client.getConsignments(.with { $0.pageToken = "not-a-token" }, metadata: ann)
            }
            return (pages, ids)
        }
        #expect(pages.map(\.count) == [2, 2, 1])
        #expect(pages.flatMap { $0 } == ids)
    }
}

@Suite struct ConsignmentDomainTests {
    @Test func bookingStampsTheOwnerOnTheConsignmentAndEveryContainer() {
        let consignment = Consignment(
            description: "d", weight: 1,
            containers: [
                Container(customerID: "c", origin: "o", userID: "forged"), Container(customerID: "c", origin: "o"),
            ],
            userID: "forged")
        let booked = consignment.booked(id: "id-1", vesselID: "v", owner: "owner-1")
        #expect(booked.id == "id-1" && booked.vesselID == "v" && booked.userID == "owner-1")
        #expect(booked.containers.map(\.userID) == ["owner-1", "owner-1"])
    }

    @Test func specificationAsksForASlotPerContainer() throws {
        let consignment = Consignment(
            description: "d", weight: 900,
            containers: Array(repeating: Container(customerID: "c", origin: "o"), count: 4))
        #expect(try consignment.specification == (try VesselSpecification(capacity: 4, maxWeight: 900)))
    }

    /// A page ends before its items pass `PageRequest.maximumBytes` (always keeping one), with a token for the rest,
    /// so that no answer outgrows a client's 4 MiB message limit however large the consignments are.
    @Test func aPageOfLargeItemsEndsBeforeItsBytesPassTheBound() {
        let third = PageRequest.maximumBytes / 3 + 1
        let page = Page(fetched: Array(0..<10), size: 5, bytes: { _ in third }) { [String($0)] }
        #expect(page.items == [0, 1] && page.nextToken == PageToken.encode(["1"]))
        let huge = Page(fetched: [0, 1], size: 5, bytes: { _ in PageRequest.maximumBytes * 2 }) { [String($0)] }
        #expect(huge.items == [0] && huge.nextToken == PageToken.encode(["0"]), "one item at least")
        let small = Page(fetched: [0, 1, 2], size: 5, bytes: { _ in 10 }) { [String($0)] }
        #expect(small.items == [0, 1, 2] && small.nextToken.isEmpty)

        // The largest valid consignment counts its containers' text: five of them pass the bound.
        let longest = String(repeating: "é", count: Consignment.maximumFieldLength)
        let largest = Consignment(
            description: "d", weight: 1,
            containers: Array(
                repeating: Container(customerID: longest, origin: longest), count: Consignment.maximumContainers))
        #expect(largest.approximateBytes > 800_000)
        #expect(largest.approximateBytes * 5 > PageRequest.maximumBytes)
    }
}
