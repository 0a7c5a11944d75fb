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
import ShippyTestSupport
import Testing

@testable import ConsignmentService
@testable import UserService
@testable import VesselService

/// Every RPC of the three services, called as each kind of caller, through the production interceptor and
/// handlers (in-process transport, in-memory repositories, a fresh service for every cell). "user" acts on
/// their own things; "another user" and "admin" act on the first user's.
@Suite struct AuthorizationMatrixTests {
    enum Caller: String, CaseIterable {
        case none = "no token", forged = "forged token", user, anotherUser = "another user", admin
    }

    /// The documented outcome of one RPC for each caller: `nil` is success.
    typealias Row = [Caller: RPCError.Code?]

    let keys: TestKeys
    let forger = ES256PrivateKey()
    let logs = LogCapture()

    init() throws {
        keys = try TestKeys()
    }

    static let ann = User(
        id: "a0000000-0000-4000-8000-00000000000a", name: "Ann", company: "Acme", email: "ann@example.com")
    static let bob = User(
        id: "b0000000-0000-4000-8000-00000000000b", name: "Bob", company: "Acme", email: "bob@example.com")
    static let ada = User(
        id: "ada00000-0000-4000-8000-0000000000ad", name: "Ada", company: "Shippy", email: "ada@example.com")
    static let password = "ann's long password"

    /// The metadata a caller sends; `owner` is the user whose things the test acts on.
    func metadata(_ caller: Caller, owner: User) async throws -> Metadata {
        switch caller {
        case .none: return [:]
        case .forged:
            // Right claims and even the admin role, but signed by a key the services do not know.
            let signer = await TokenSigner(
                privateKey: forger, issuer: "shippy-user-service", audience: "shippy", lifetime: .seconds(600))
            return ["authorization": "Bearer \(try await signer.sign(owner, roles: [.admin]))"]
        case .user: return try await keys.bearer(owner)
        case .anotherUser: return try await keys.bearer(Self.bob)
        case .admin: return try await keys.bearer(Self.ada, roles: [.admin])
        }
    }

    /// Runs `call` once per caller, each against a fresh service from `fresh`, and checks the row; returns the
    /// text of every successful response (to search for secrets) and prints the row.
    func check(
        _ rpc: String,
        _ row: Row,
        owner: User = Self.ann,
        _ call: @Sendable (Metadata) async throws -> String
    ) async throws -> [String] {
        var responses: [String] = []
        var seen: [String] = []
        for caller in Caller.allCases {
            let expected = try #require(row[caller], "\(rpc): no expectation for \(caller.rawValue)")
            var outcome: RPCError.Code?
            do {
                responses.append(try await call(try await metadata(caller, owner: owner)))
            } catch let error as RPCError {
                outcome = error.code
            }
            #expect(
                outcome == expected,
                "\(rpc) as \(caller.rawValue): expected \(expected.map { "\($0)" } ?? "ok"), got \(outcome.map { "\($0)" } ?? "ok")"
            )
            seen.append("\(caller.rawValue): \(outcome.map { "\($0)" } ?? "ok")")
        }
        print("\(rpc) — \(seen.joined(separator: ", "))")
        return responses
    }

    static let unauthenticated: RPCError.Code? = .unauthenticated
    static let denied: RPCError.Code? = .permissionDenied
    static let ok: RPCError.Code? = nil

    // MARK: vessel.VesselService

    func withVessels<T: Sendable>(
        _ body: @Sendable (Vessel_VesselService.Client<InProcessTransport.Client>) async throws -> T
    ) async throws -> T {
        let repository = InMemoryVesselRepository(Vessel.defaultFleet)
        _ = try await repository.book(
            try BookingRequest(
                consignmentID: "ann-1", specification: try VesselSpecification(capacity: 1, maxWeight: 1),
                ownerID: Self.ann.id),
            expiresAt: .max)
        // A confirmed one, for Cancel.
        _ = try await repository.book(
            try BookingRequest(
                consignmentID: "ann-2", specification: try VesselSpecification(capacity: 1, maxWeight: 1),
                ownerID: Self.ann.id),
            expiresAt: .max)
        _ = try await repository.confirm(consignmentID: "ann-2", attempt: 0)
        let verifier = await keys.signer().verifier
        return try await withRunningApp({ configuration in
            VesselServiceApp.build(
                configuration: configuration, repository: repository, verifier: verifier, dependencies: [],
                logger: logs.logger())
        }) { _, client in try await body(.init(wrapping: client)) }
    }

    @Test func vesselService() async throws {
        var responses: [String] = []
        responses += try await check(
            "vessel.FindAvailable",
            [.none: Self.ok, .forged: Self.ok, .user: Self.ok, .anotherUser: Self.ok, .admin: Self.ok]
        ) { metadata in
            try await withVessels { "\(try await $0.findAvailable(.with { $0.capacity = 1 }, metadata: metadata))" }
        }
        responses += try await check(
            "vessel.Create",
            [
                .none: Self.unauthenticated, .forged: Self.unauthenticated, .user: Self.denied,
                .anotherUser: Self.denied, .admin: Self.ok,
            ]
        ) { metadata in
            try await withVessels {
                "\(try await $0.create(.with { $0.name = "New"; $0.capacity = 1; $0.maxWeight = 1 }, metadata: metadata))"
            }
        }
        responses += try await check(
            "vessel.Book",
            [
                .none: Self.unauthenticated, .forged: Self.unauthenticated, .user: Self.ok, .anotherUser: Self.denied,
                .admin: Self.denied,
            ]
        ) { metadata in
            try await withVessels {
                "\(try await $0.book(.with { $0.consignmentID = "ann-1"; $0.containers = 1; $0.weight = 1 }, metadata: metadata))"
            }
        }
        responses += try await check(
            "vessel.Confirm",
            [
                .none: Self.unauthenticated, .forged: Self.unauthenticated, .user: Self.ok, .anotherUser: Self.denied,
                .admin: Self.ok,
            ]
        ) { metadata in
            try await withVessels {
                "\(try await $0.confirm(.with { $0.consignmentID = "ann-1" }, metadata: metadata))"
            }
        }
        responses += try await check(
            "vessel.Release",
            [
                .none: Self.unauthenticated, .forged: Self.unauthenticated, .user: Self.ok, .anotherUser: Self.denied,
                .admin: Self.ok,
            ]
        ) { metadata in
            try await withVessels {
                "\(try await $0.release(.with { $0.consignmentID = "ann-1" }, metadata: metadata))"
            }
        }
        responses += try await check(
            "vessel.Cancel",
            [
                .none: Self.unauthenticated, .forged: Self.unauthenticated, .user: Self.ok, .anotherUser: Self.denied,
                .admin: Self.ok,
            ]
        ) { metadata in
            try await withVessels {
                "\(try await $0.cancel(.with { $0.consignmentID = "ann-2" }, metadata: metadata))"
            }
        }
        responses += try await check(
            "vessel.List",
            [
                .none: Self.unauthenticated, .forged: Self.unauthenticated, .user: Self.ok, .anotherUser: Self.ok,
                .admin: Self.ok,
            ]
        ) { metadata in
            try await withVessels { "\(try await $0.list(Vessel_ListRequest(), metadata: metadata))" }
        }
        #expect(!responses.isEmpty)
    }

    // MARK: user.UserService

    /// A user service with Ann signed up (her id is the one the test's tokens carry) and Ada, its admin.
    func withUsers<T: Sendable>(
        _ body: @Sendable (User_UserService.Client<InProcessTransport.Client>) async throws -> T
    ) async throws -> T {
        let repository = InMemoryUserRepository()
        let hasher = try await PasswordHasher.start(
            cost: 4, threads: 1, admission: { .init(queueLimit: 8, maximumWait: .seconds(10)) })
        try await repository.create(
            Self.ann, passwordHash: try await hasher.hash(Self.password),
            event: OutboxEvent(id: UUID(), subject: "s", payload: []))
        // Ada is an admin in the store too: role changes check the caller's stored role.
        try await repository.create(
            Self.ada, passwordHash: "-", event: OutboxEvent(id: UUID(), subject: "s", payload: []))
        _ = await repository.change(RoleChange(role: .admin, granted: true, email: Self.ada.email, actor: "operator"))
        await hasher.shutdown()
        return try await withRunningApp({ configuration in
            try await UserServiceApp.build(
                configuration: .inMemory(configuration, key: keys.privateKey),
                repository: repository, dependencies: [], logger: logs.logger())
        }) { _, client in try await body(.init(wrapping: client)) }
    }

    @Test func userService() async throws {
        let annToken = try await keys.signer().sign(Self.ann)
        var responses: [String] = []
        responses += try await check(
            "user.Create", [.none: Self.ok, .forged: Self.ok, .user: Self.ok, .anotherUser: Self.ok, .admin: Self.ok]
        ) { metadata in
            try await withUsers {
                "\(try await $0.create(.with { $0.name = "Neo"; $0.email = "neo@example.com"; $0.password = "neo password" }, metadata: metadata))"
            }
        }
        responses += try await check(
            "user.Get",
            [
                .none: Self.unauthenticated, .forged: Self.unauthenticated, .user: Self.ok, .anotherUser: Self.denied,
                .admin: Self.ok,
            ]
        ) { metadata in
            try await withUsers { "\(try await $0.get(.with { $0.id = Self.ann.id }, metadata: metadata))" }
        }
        responses += try await check(
            "user.GetAll",
            [
                .none: Self.unauthenticated, .forged: Self.unauthenticated, .user: Self.denied,
                .anotherUser: Self.denied, .admin: Self.ok,
            ]
        ) { metadata in
            try await withUsers { "\(try await $0.getAll(User_Request(), metadata: metadata))" }
        }
        responses += try await check(
            "user.Auth", [.none: Self.ok, .forged: Self.ok, .user: Self.ok, .anotherUser: Self.ok, .admin: Self.ok]
        ) { metadata in
            try await withUsers {
                "\(try await $0.auth(.with { $0.email = Self.ann.email; $0.password = Self.password }, metadata: metadata))"
            }
        }
        responses += try await check(
            "user.ValidateToken",
            [.none: Self.ok, .forged: Self.ok, .user: Self.ok, .anotherUser: Self.ok, .admin: Self.ok]
        ) { metadata in
            try await withUsers { "\(try await $0.validateToken(.with { $0.token = annToken }, metadata: metadata))" }
        }
        responses += try await check(
            "user.SetRole",
            [
                .none: Self.unauthenticated, .forged: Self.unauthenticated, .user: Self.denied,
                .anotherUser: Self.denied, .admin: Self.ok,
            ]
        ) { metadata in
            try await withUsers {
                let grant = User_RoleChange.with {
                    $0.email = Self.ann.email; $0.role = "admin"; $0.granted = true
                }
                return "\(try await $0.setRole(grant, metadata: metadata))"
            }
        }
        // The refresh token is the credential of Refresh and Logout: callable with any access token or none.
        for (rpc, logout) in [("user.Refresh", false), ("user.Logout", true)] {
            responses += try await check(
                rpc, [.none: Self.ok, .forged: Self.ok, .user: Self.ok, .anotherUser: Self.ok, .admin: Self.ok]
            ) { metadata in
                try await withUsers { users in
                    let refresh = try await users.auth(
                        .with {
                            $0.email = Self.ann.email; $0.password = Self.password
                        }
                    ).refreshToken
                    let request = User_Token.with { $0.refreshToken = refresh }
                    return logout
                        ? "\(try await users.logout(request, metadata: metadata))"
                        : "\(try await users.refresh(request, metadata: metadata))"
                }
            }
        }
        responses += try await check(
            "user.RevokeSessions",
            [
                .none: Self.unauthenticated, .forged: Self.unauthenticated, .user: Self.ok, .anotherUser: Self.denied,
                .admin: Self.ok,
            ]
        ) { metadata in
            try await withUsers { "\(try await $0.revokeSessions(.with { $0.id = Self.ann.id }, metadata: metadata))" }
        }
        // Only your own password, which you must know: another user's or an admin's token names someone else.
        responses += try await check(
            "user.ChangePassword",
            [
                .none: Self.unauthenticated, .forged: Self.unauthenticated, .user: Self.ok,
                .anotherUser: Self.unauthenticated, .admin: Self.unauthenticated,
            ]
        ) { metadata in
            try await withUsers {
                let change = User_PasswordChange.with {
                    $0.password = Self.password; $0.newPassword = "ann's new long password"
                }
                return "\(try await $0.changePassword(change, metadata: metadata))"
            }
        }
        for response in responses {
            #expect(
                !response.contains(Self.password) && !response.contains("$2b$"),
                "a response holds a password or hash: \(response)")
        }
        let logs = self.logs.all.joined(separator: "\n")
        #expect(!logs.contains(Self.password) && !logs.contains("$2b$"))
    }

    // MARK: consignment.ShippingService

    func withConsignments<T: Sendable>(
        _ body: @Sendable (Consignment_ShippingService.Client<InProcessTransport.Client>) async throws -> T
    ) async throws -> T {
        let repository = InMemoryConsignmentRepository()
        _ = await repository.begin(
            Consignment(
                id: "ann-1", description: "Ann's", weight: 1,
                containers: [Container(customerID: "c", origin: "o", userID: Self.ann.id)], userID: Self.ann.id),
            contact: Contact(), credential: "", now: 0)
        _ = await repository.markBooked(id: "ann-1", attempt: 1, vesselID: "vessel001", event: .sample())
        let verifier = await keys.signer().verifier
        let booking = ConsignmentBooking(
            consignments: repository, vessels: ScriptedVesselBooker(), staleAfter: .seconds(30), logger: logs.logger())
        return try await withRunningApp({ configuration in
            ConsignmentServiceApp.build(
                configuration: configuration, booking: booking, verifier: verifier, dependencies: [],
                logger: logs.logger())
        }) { _, client in try await body(.init(wrapping: client)) }
    }

    @Test func consignmentService() async throws {
        _ = try await check(
            "consignment.CreateConsignment",
            [
                .none: Self.unauthenticated, .forged: Self.unauthenticated, .user: Self.ok, .anotherUser: Self.ok,
                .admin: Self.ok,
            ]
        ) { metadata in
            try await withConsignments {
                "\(try await $0.createConsignment(ConsignmentHandlerTests.sample, metadata: metadata))"
            }
        }
        _ = try await check(
            "consignment.GetConsignments",
            [
                .none: Self.unauthenticated, .forged: Self.unauthenticated, .user: Self.ok, .anotherUser: Self.ok,
                .admin: Self.ok,
            ]
        ) { metadata in
            try await withConsignments {
                "\(try await $0.getConsignments(Consignment_GetRequest(), metadata: metadata))"
            }
        }
        // One consignment: its owner's or an admin's to see and to cancel; to anyone else it does not exist.
        let oneConsignment: Row = [
            .none: Self.unauthenticated, .forged: Self.unauthenticated, .user: Self.ok, .anotherUser: .notFound,
            .admin: Self.ok,
        ]
        _ = try await check("consignment.GetConsignment", oneConsignment) { metadata in
            try await withConsignments {
                "\(try await $0.getConsignment(.with { $0.id = "ann-1" }, metadata: metadata))"
            }
        }
        _ = try await check("consignment.CancelConsignment", oneConsignment) { metadata in
            try await withConsignments {
                "\(try await $0.cancelConsignment(.with { $0.id = "ann-1" }, metadata: metadata))"
            }
        }
        // Everyone sees only their own: Ann her one consignment, another user and the admin none of hers.
        let annToken = try await metadata(.user, owner: Self.ann)
        let bobToken = try await metadata(.anotherUser, owner: Self.ann)
        let adaToken = try await metadata(.admin, owner: Self.ann)
        let lists = try await withConsignments { client in
            [
                try await client.getConsignments(Consignment_GetRequest(), metadata: annToken).consignments.map(\.id),
                try await client.getConsignments(Consignment_GetRequest(), metadata: bobToken).consignments.map(\.id),
                try await client.getConsignments(Consignment_GetRequest(), metadata: adaToken).consignments.map(\.id),
            ]
        }
        #expect(lists == [["ann-1"], [], []])
    }
}
