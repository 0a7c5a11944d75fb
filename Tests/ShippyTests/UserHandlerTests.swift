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

@testable import UserService

/// The user handler and the auth interceptor through the in-process transport, over the in-memory repository.
@Suite struct UserHandlerTests {
    typealias Client = User_UserService.Client<InProcessTransport.Client>

    let repository = InMemoryUserRepository()
    let logs = LogCapture()

    func withService<T: Sendable>(_ body: @Sendable (Client, TokenSigner) async throws -> T) async throws -> T {
        let signer = await TokenSigner(
            privateKey: ES256PrivateKey(), issuer: "shippy-user-service", audience: "shippy", lifetime: .seconds(3600))
        let hasher = PasswordHasher(cost: 4, threads: 1)
        let handler = UserServiceHandler(repository: repository, hasher: hasher, signer: signer, logger: logs.logger())
        let interceptor = AuthInterceptor(verifier: signer.verifier, protecting: User_UserService.descriptor, publicMethods: UserServiceHandler.publicMethods)
        let transport = InProcessTransport()
        let result = try await withGRPCServer(transport: transport.server, services: [handler], interceptors: [interceptor]) { _ in
            try await withGRPCClient(transport: transport.client) { client in
                try await body(Client(wrapping: client), signer)
            }
        }
        await hasher.shutdown()
        return result
    }

    static let ewan = User_User.with {
        $0.name = "Ewan Valentine"
        $0.email = "ewan@example.com"
        $0.company = "BBC"
        $0.password = "correct horse battery"
    }


    @Test func signUpReturnsTheUserWithAnIdAndNoPassword() async throws {
        let created = try await withService { client, _ in try await client.create(Self.ewan).user }
        #expect(!created.id.isEmpty)
        #expect(created.email == "ewan@example.com" && created.name == "Ewan Valentine" && created.company == "BBC")
        #expect(created.password.isEmpty)
        let stored = try #require(await repository.credentials(email: "ewan@example.com"))
        #expect(stored.passwordHash.hasPrefix("$2") && stored.passwordHash != Self.ewan.password)
    }

    @Test func secondUserWithSameEmailInAnyCaseIsAlreadyExists() async throws {
        try await withService { client, _ in
            _ = try await client.create(Self.ewan)
            var twin = Self.ewan
            twin.email = "  EWAN@Example.COM "
            await expectStatus(.alreadyExists, "already exists") { _ = try await client.create(twin) }
        }
    }

    @Test(arguments: [
        ("name", "", "name must not be empty"),
        ("email", "not-an-email", "is not a valid address"),
        ("email", "a@b", "is not a valid address"),
        ("password", "short", "at least 8 characters"),
        ("password", String(repeating: "é", count: 40), "at most 72 bytes"),
    ])
    func invalidSignUpIsInvalidArgument(field: String, value: String, message: String) async throws {
        var user = Self.ewan
        switch field {
        case "name": user.name = value
        case "email": user.email = value
        default: user.password = value
        }
        let request = user
        try await withService { client, _ in
            await expectStatus(.invalidArgument, message) { _ = try await client.create(request) }
        }
    }

    @Test func loginReturnsATokenThatValidates() async throws {
        try await withService { client, signer in
            let created = try await client.create(Self.ewan).user
            let token = try await client.auth(.with { $0.email = "EWAN@example.com"; $0.password = Self.ewan.password })
            #expect(try await signer.verifier.verify(token.token).userID == created.id)
            #expect(try await client.validateToken(.with { $0.token = token.token }).valid)
        }
    }

    @Test func wrongPasswordAndUnknownEmailGetTheSameAnswer() async throws {
        try await withService { client, _ in
            _ = try await client.create(Self.ewan)
            var messages: [String] = []
            for attempt in [("ewan@example.com", "wrong password"), ("nobody@example.com", Self.ewan.password)] {
                do {
                    _ = try await client.auth(.with { $0.email = attempt.0; $0.password = attempt.1 })
                    Issue.record("login with \(attempt) succeeded")
                } catch let error as RPCError {
                    #expect(error.code == .unauthenticated)
                    messages.append(error.message)
                }
            }
            #expect(messages == ["wrong email or password", "wrong email or password"])
            await expectStatus(.invalidArgument, "email and password are required") {
                _ = try await client.auth(.with { $0.email = "ewan@example.com" })
            }
        }
    }

    @Test func unknownEmailIsCheckedAgainstARealHash() async throws {
        let hasher = PasswordHasher(cost: 4, threads: 1)
        #expect(hasher.decoyHash.hasPrefix("$2b$04$"))
        #expect(try await hasher.verify("anything", hash: nil) == false)
        await hasher.shutdown()
    }

    @Test func getAndGetAllNeedAToken() async throws {
        try await withService { client, _ in
            let created = try await client.create(Self.ewan).user
            let id = created.id
            await expectStatus(.unauthenticated, "missing token") { _ = try await client.get(.with { $0.id = id }) }
            await expectStatus(.unauthenticated, "missing token") { _ = try await client.getAll(User_Request()) }

            let token = try await client.auth(.with { $0.email = Self.ewan.email; $0.password = Self.ewan.password }).token
            let byBearer = try await client.get(.with { $0.id = id }, metadata: ["authorization": "Bearer \(token)"]).user
            let byOriginalKey = try await client.get(.with { $0.id = id }, metadata: ["token": "\(token)"]).user
            let everyone = try await client.getAll(User_Request(), metadata: ["authorization": "Bearer \(token)"]).users
            #expect(byBearer == created)
            #expect(byOriginalKey == created)
            #expect(everyone == [created])
            await expectStatus(.notFound, "no user with id") {
                _ = try await client.get(
                    .with { $0.id = "00000000-0000-4000-8000-000000000000" }, metadata: ["authorization": "Bearer \(token)"])
            }
        }
    }

    @Test(arguments: ["", "111", "111.111.111", "Bearer", "a.b.c"])
    func malformedTokenIsUnauthenticatedAndTheServiceKeepsAnswering(token: String) async throws {
        try await withService { client, _ in
            await expectStatus(.unauthenticated, "token") {
                _ = try await client.getAll(User_Request(), metadata: ["authorization": "Bearer \(token)"])
            }
            await expectStatus(.unauthenticated, "invalid token") {
                _ = try await client.validateToken(.with { $0.token = token })
            }
            _ = try await client.create(Self.ewan)
        }
    }

    @Test func noPasswordHashOrTokenInAnyLogLineOrResponse() async throws {
        let (created, token, listed) = try await withService { client, _ in
            let created = try await client.create(Self.ewan)
            _ = try? await client.auth(.with { $0.email = Self.ewan.email; $0.password = "wrong password" })
            let token = try await client.auth(.with { $0.email = Self.ewan.email; $0.password = Self.ewan.password }).token
            let listed = try await client.getAll(User_Request(), metadata: ["authorization": "Bearer \(token)"])
            _ = try await client.validateToken(.with { $0.token = token })
            return (created, token, listed)
        }
        let hash = try #require(await repository.credentials(email: Self.ewan.email)).passwordHash
        let logs = self.logs.all.joined(separator: "\n")
        #expect(!logs.isEmpty)
        for secret in [Self.ewan.password, "wrong password", hash, token] {
            #expect(!logs.contains(secret))
            #expect(!"\(created)".contains(secret) && !"\(listed)".contains(secret))
        }
        #expect(created.user.password.isEmpty && listed.users.allSatisfy { $0.password.isEmpty })
        let payload = try #require(Data(base64URL: token.split(separator: ".")[1]))
        let claims = String(decoding: payload, as: UTF8.self)
        #expect(!claims.contains(hash) && !claims.contains(Self.ewan.password) && !claims.contains("password"))
    }
}
