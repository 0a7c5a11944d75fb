import Foundation
import GRPCCore
import GRPCInProcessTransport
import JWTKit
import Logging
import ShippyContracts
import ShippyDomain
import ShippyIdentity
import ShippyMessaging
import ShippyRuntime
import ShippyStorage
import ShippyTestSupport
import Testing

@testable import UserService

/// The user handler and the auth interceptor through the in-process transport, over the in-memory repository.
@Suite struct UserHandlerTests {
    typealias Client = User_UserService.Client<InProcessTransport.Client>

    let repository = InMemoryUserRepository()
    let logs = LogCapture()

    func withService<T: Sendable>(_ body: @Sendable (Client, TokenSigner) async throws -> T) async throws -> T {
        try await withRunningApp({ configuration in
            try await UserServiceApp.build(
                configuration: .inMemory(configuration), repository: repository,
                dependencies: [], logger: logs.logger())
        }) { app, client in try await body(Client(wrapping: client), app.signer) }
    }

    static let ewan = User_User.with {
        $0.name = "Ewan Valentine"
        $0.email = "ewan@example.com"
        $0.company = "BBC"
        $0.password = "correct horse battery"
    }

    static let admin = User_User.with {
        $0.name = "Ada Admin"
        $0.email = "admin@example.com"
        $0.password = "admin password"
    }

    /// Signs `user` up and logs in; returns the created user and the bearer metadata.
    /// Signs `user` up (`admin` is then granted the role, as the operator would) and logs in.
    /// - Returns: the user as stored, and the token's metadata.
    func signUp(_ user: User_User, _ client: Client) async throws -> (User_User, Metadata) {
        _ = try await client.create(user)
        if user.email == Self.admin.email {
            _ = try await repository.change(
                RoleChange(role: .admin, granted: true, email: user.email, actor: "operator"))
        }
        let metadata = try await logIn(user, client)
        return (try await client.get(User_User(), metadata: metadata).user, metadata)
    }

    func logIn(_ user: User_User, _ client: Client) async throws -> Metadata {
        let token = try await client.auth(
            .with {
                $0.email = user.email; $0.password = user.password
            }
        ).token
        return ["authorization": "Bearer \(token)"]
    }

    @Test func signUpReturnsTheUserWithAnIdAndNoPassword() async throws {
        let created = try await withService { client, _ in try await client.create(Self.ewan).user }
        #expect(!created.id.isEmpty)
        #expect(created.email == "ewan@example.com" && created.name == "Ewan Valentine" && created.company == "BBC")
        #expect(created.password.isEmpty)
        let stored = try #require(await repository.credentials(email: "ewan@example.com"))
        #expect(stored.passwordHash.hasPrefix("$2") && stored.passwordHash != Self.ewan.password)
    }

    @Test func aTakenAddressIsAnsweredAsANewOneAndItsOwnerIsToldByMail() async throws {
        try await withService { client, _ in
            let ewan = try await client.create(Self.ewan).user
            var twin = Self.ewan
            twin.name = "Twin"
            twin.email = "  EWAN@Example.COM "
            twin.password = "the twin's password"
            let answer = try await client.create(twin).user
            #expect(
                answer.id != ewan.id && answer.email == ewan.email && answer.name == "Twin" && answer.roles == ["user"])
            #expect(try await repository.credentials(email: "ewan@example.com")?.user.id == ewan.id, "nothing stored")
            let events = await repository.events
            #expect(events.map(\.subject) == [UserEvents.created, UserEvents.signUpRepeated])
            let notice = try Shippy_Events_SignUpRepeated(serializedBytes: try #require(events.last).payload)
            #expect(notice.userID == ewan.id && notice.name == "Ewan Valentine" && notice.email == "ewan@example.com")
        }
    }

    @Test(arguments: [
        ("name", "", "name must not be empty"),
        ("email", "not-an-email", "must hold exactly one @"),
        ("email", "a@b", "the domain must be a dotted name"),
        ("password", "short", "at least 8 characters"),
        ("password", String(repeating: "é", count: 1_025), "at most 1024 characters"),
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
            let token = try await client.auth(
                .with {
                    $0.email = "EWAN@example.com"; $0.password = Self.ewan.password
                })
            let claims = try await signer.verifier.verify(token.token)
            #expect(claims.userID == created.id)
            #expect(token.expiresAtUnix == Int64(claims.exp.value.timeIntervalSince1970), "the expiry, undecoded")
            #expect(try await client.validateToken(.with { $0.token = token.token }).valid)
        }
    }

    @Test func wrongPasswordAndUnknownEmailGetTheSameAnswer() async throws {
        try await withService { client, _ in
            _ = try await client.create(Self.ewan)
            var messages: [String] = []
            for attempt in [("ewan@example.com", "wrong password"), ("nobody@example.com", Self.ewan.password)] {
                do {
                    _ = try await client.auth(
                        .with {
                            $0.email = attempt.0; $0.password = attempt.1
                        })
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
        let hasher = try await PasswordHasher.start(
            cost: 4, threads: 1, admission: { .init(queueLimit: 1, maximumWait: .seconds(10)) })
        #expect(try await hasher.decoyHash.value.hasPrefix("$2b$04$"))
        #expect(try await hasher.verify("anything", hash: nil) == false)
        await hasher.shutdown()
    }

    @Test func getAnswersYourOwnUserAndGetAllIsForAdmins() async throws {
        try await withService { client, _ in
            let (ewan, ewanToken) = try await signUp(Self.ewan, client)
            let (admin, adminToken) = try await signUp(Self.admin, client)
            let id = ewan.id
            await expectStatus(.unauthenticated, "missing token") { _ = try await client.get(.with { $0.id = id }) }
            await expectStatus(.unauthenticated, "missing token") { _ = try await client.getAll(User_Request()) }

            let byBearer = try await client.get(.with { $0.id = id }, metadata: ewanToken).user
            let tokenValue = ewanToken[stringValues: "authorization"].first { _ in true }!.dropFirst("Bearer ".count)
            let byOriginalKey = try await client.get(.with { $0.id = id }, metadata: ["token": "\(tokenValue)"]).user
            #expect(byBearer == ewan && byOriginalKey == ewan && ewan.roles == ["user"])
            #expect(try await client.get(User_User(), metadata: ewanToken).user == ewan, "no id: the caller")
            #expect(admin.roles == ["admin"])
            await expectStatus(.permissionDenied, "belongs to another user") {
                _ = try await client.get(.with { $0.id = admin.id }, metadata: ewanToken)
            }
            // Another user's id that does not exist is refused the same way: no probing for ids.
            await expectStatus(.permissionDenied, "belongs to another user") {
                _ = try await client.get(.with { $0.id = "00000000-0000-4000-8000-000000000000" }, metadata: ewanToken)
            }
            await expectStatus(.permissionDenied, "only an admin may list users") {
                _ = try await client.getAll(User_Request(), metadata: ewanToken)
            }
            #expect(try await client.get(.with { $0.id = id }, metadata: adminToken).user == ewan)
            #expect(try await client.getAll(User_Request(), metadata: adminToken).users == [ewan, admin])
            await expectStatus(.notFound, "no user with id") {
                _ = try await client.get(.with { $0.id = "00000000-0000-4000-8000-000000000000" }, metadata: adminToken)
            }
        }
    }

    @Test func rolesAreGrantedByAnAdminNeverClaimedAndEveryChangeIsAudited() async throws {
        try await withService { client, _ in
            // A sign-up that asks for the role (the output-only field set by the client) is a user like any other.
            var claimant = Self.ewan
            claimant.roles = ["admin"]
            let (ewan, ewanToken) = try await signUp(claimant, client)
            let (admin, adminToken) = try await signUp(Self.admin, client)
            #expect(ewan.roles == ["user"] && admin.roles == ["admin"])
            #expect(try await repository.credentials(email: Self.ewan.email)?.user.roles == [.user], "stored as a user")
            let grantEwan = User_RoleChange.with {
                $0.email = "EWAN@example.com"; $0.role = "admin"; $0.granted = true
            }
            await expectStatus(.unauthenticated, "missing token") { _ = try await client.setRole(grantEwan) }
            await expectStatus(.permissionDenied, "only an admin may grant or revoke roles") {
                _ = try await client.setRole(grantEwan, metadata: ewanToken)
            }
            await expectStatus(.invalidArgument, "cannot be granted") {
                var asRoot = grantEwan
                asRoot.role = "root"
                _ = try await client.setRole(asRoot, metadata: adminToken)
            }
            await expectStatus(.notFound, "no user with email") {
                var nobody = grantEwan
                nobody.email = "nobody@example.com"
                _ = try await client.setRole(nobody, metadata: adminToken)
            }
            #expect(try await client.setRole(grantEwan, metadata: adminToken).user.roles == ["admin"])
            // The token in hand keeps what it was signed with; the next log-in carries the role.
            await expectStatus(.permissionDenied, "only an admin may list users") {
                _ = try await client.getAll(User_Request(), metadata: ewanToken)
            }
            let ewanAsAdmin = try await logIn(Self.ewan, client)
            #expect(try await client.getAll(User_Request(), metadata: ewanAsAdmin).users.count == 2)
            await expectStatus(.permissionDenied, "cannot revoke their own role") {
                _ = try await client.setRole(
                    .with {
                        $0.email = Self.admin.email; $0.role = "admin"; $0.granted = false
                    }, metadata: adminToken)
            }
            var revokeEwan = grantEwan
            revokeEwan.granted = false
            #expect(try await client.setRole(revokeEwan, metadata: adminToken).user.roles == ["user"])
            // Ewan's token still says admin for its last minutes; role changes go by the stored role.
            await expectStatus(.permissionDenied, "yours was revoked") {
                _ = try await client.setRole(grantEwan, metadata: ewanAsAdmin)
            }
            await expectStatus(.permissionDenied, "only an admin may list users") {
                _ = try await client.getAll(User_Request(), metadata: try await logIn(Self.ewan, client))
            }
            let audit = await repository.roleChanges
            #expect(audit.map(\.actor) == ["operator", admin.id, admin.id])
            #expect(audit.map(\.granted) == [true, true, false])
            #expect(logs.all.filter { $0.contains("role granted") || $0.contains("role revoked") }.count == 2)
        }
    }

    @Test(arguments: [
        "x>,<victim@evil.io", "\u{212A}ate@example.com", "kat\u{00E9}@example.com", "kate\u{0301}@example.com",
        "a b@example.com", "\"quoted\"@example.com", "kate@localhost", "a..b@example.com", ".a@example.com",
        "a@-x.com", "a@[127.0.0.1]", "a@b@example.com", String(repeating: "k", count: 65) + "@example.com",
    ])
    func anAddressOutsideTheAcceptedSyntaxIsRefusedAndNothingIsStored(email: String) async throws {
        try await withService { client, _ in
            await expectStatus(.invalidArgument, "email") {
                _ = try await client.create(
                    .with {
                        $0.name = "Kate"; $0.email = email; $0.password = "kate's password"
                    })
            }
        }
        #expect(await repository.events.isEmpty)
    }

    @Test func anAddressIsStoredAndComparedInItsOneCanonicalForm() async throws {
        try await withService { client, _ in
            let kate = User_User.with {
                $0.name = "Kate"; $0.email = " Kate.Lee+ship@Example.COM "; $0.password = "kate's password"
            }
            #expect(try await client.create(kate).user.email == "kate.lee+ship@example.com")
            var again = kate
            again.email = "KATE.LEE+SHIP@example.com"
            _ = try await client.create(again)
            #expect(await repository.events.last?.subject == UserEvents.signUpRepeated, "the same account")
            let token = try await client.auth(
                .with {
                    $0.email = "kate.lee+ship@EXAMPLE.com"; $0.password = kate.password
                })
            #expect(token.valid)
            await expectStatus(.unauthenticated, "wrong email or password") {
                _ = try await client.auth(
                    .with {
                        $0.email = "\u{212A}ate.lee+ship@example.com"; $0.password = kate.password
                    })
            }
        }
    }

    func logInForTokens(_ user: User_User, _ client: Client) async throws -> User_Token {
        try await client.auth(
            .with {
                $0.email = user.email; $0.password = user.password
            })
    }

    func refresh(_ token: String, _ client: Client) async throws -> User_Token {
        try await client.refresh(.with { $0.refreshToken = token })
    }

    @Test func aRefreshTokenIsSpentOnUseAndOneUsedTwiceRevokesItsLogin() async throws {
        try await withService { client, signer in
            _ = try await client.create(Self.ewan)
            let first = try await logInForTokens(Self.ewan, client)
            #expect(!first.refreshToken.isEmpty && first.refreshExpiresAtUnix > first.expiresAtUnix)
            let second = try await refresh(first.refreshToken, client)
            #expect(second.refreshToken != first.refreshToken)
            let firstUser = try await signer.verifier.verify(first.token).userID
            #expect(try await signer.verifier.verify(second.token).userID == firstUser, "a token for the same user")
            await expectStatus(.unauthenticated, "used before") { _ = try await refresh(first.refreshToken, client) }
            // The copy in the right hands is revoked too: whoever holds either must log in again.
            await expectStatus(.unauthenticated, "not valid") { _ = try await refresh(second.refreshToken, client) }
            // Another login of the same user is its own, and stands.
            let other = try await logInForTokens(Self.ewan, client)
            #expect(try await refresh(other.refreshToken, client).valid)
            await expectStatus(.unauthenticated, "not valid") { _ = try await refresh("never-issued", client) }
            await expectStatus(.invalidArgument, "refresh_token is required") { _ = try await refresh("", client) }
        }
    }

    @Test func logoutRevokesTheLoginAndRolesAreReadAgainAtRefresh() async throws {
        try await withService { client, signer in
            _ = try await client.create(Self.ewan)
            let login = try await logInForTokens(Self.ewan, client)
            #expect(try await signer.verifier.verify(login.token).isAdmin == false)
            _ = try await repository.change(
                RoleChange(role: .admin, granted: true, email: Self.ewan.email, actor: "operator"))
            let refreshed = try await refresh(login.refreshToken, client)
            #expect(try await signer.verifier.verify(refreshed.token).isAdmin, "the role granted meanwhile")
            _ = try await client.logout(.with { $0.refreshToken = refreshed.refreshToken })
            _ = try await client.logout(.with { $0.refreshToken = refreshed.refreshToken })  // twice: no error
            await expectStatus(.unauthenticated, "not valid") { _ = try await refresh(refreshed.refreshToken, client) }
        }
    }

    @Test func aPasswordChangeOrAnAdminsRevocationEndsEveryLogin() async throws {
        try await withService { client, _ in
            let (_, adminToken) = try await signUp(Self.admin, client)
            _ = try await client.create(Self.ewan)
            let phone = try await logInForTokens(Self.ewan, client)
            let laptop = try await logInForTokens(Self.ewan, client)
            let ewanToken: Metadata = ["authorization": "Bearer \(laptop.token)"]
            await expectStatus(.unauthenticated, "current password is wrong") {
                _ = try await client.changePassword(
                    .with {
                        $0.password = "not the password"; $0.newPassword = "a new long password"
                    }, metadata: ewanToken)
            }
            await expectStatus(.invalidArgument, "new_password must be at least 8") {
                _ = try await client.changePassword(
                    .with {
                        $0.password = Self.ewan.password; $0.newPassword = "short"
                    }, metadata: ewanToken)
            }
            _ = try await client.changePassword(
                .with {
                    $0.password = Self.ewan.password; $0.newPassword = "a new long password"
                }, metadata: ewanToken)
            for login in [phone, laptop] {
                await expectStatus(.unauthenticated, "not valid") { _ = try await refresh(login.refreshToken, client) }
            }
            await expectStatus(.unauthenticated, "wrong email or password") {
                _ = try await logInForTokens(Self.ewan, client)
            }
            var renewed = Self.ewan
            renewed.password = "a new long password"
            let tablet = try await logInForTokens(renewed, client)
            // An admin ends them all; another user may not.
            await expectStatus(.permissionDenied, "another user") {
                _ = try await client.revokeSessions(
                    .with { $0.email = Self.admin.email }, metadata: ["authorization": "Bearer \(tablet.token)"])
            }
            _ = try await client.revokeSessions(.with { $0.email = "EWAN@example.com" }, metadata: adminToken)
            await expectStatus(.unauthenticated, "not valid") { _ = try await refresh(tablet.refreshToken, client) }
            #expect(logs.all.contains { $0.contains("sessions revoked") })
        }
    }

    @Test func getAllIsPagedAndRefusesOutOfRangePageSizes() async throws {
        try await withService { client, _ in
            let (_, adminToken) = try await signUp(Self.admin, client)
            for index in 0..<4 {
                _ = try await client.create(
                    .with {
                        $0.name = "U\(index)"; $0.email = "u\(index)@example.com"; $0.password = "password \(index)"
                    })
            }
            var sizes: [Int] = []
            var token = ""
            repeat {
                let page = try await client.getAll(
                    .with {
                        $0.pageSize = 2; $0.pageToken = token
                    }, metadata: adminToken)
                sizes.append(page.users.count)
                token = page.nextPageToken
            } while !token.isEmpty
            #expect(sizes == [2, 2, 1])
            for size: Int32 in [-1, 1_000_000_000] {
                await expectStatus(.invalidArgument, "page_size") {
                    _ = try await client.getAll(.with { $0.pageSize = size }, metadata: adminToken)
                }
            }
        }
    }

    @Test(arguments: ["Eve\r\nBcc: x@example.com", "Eve\u{0}", "Eve\u{202E}evE", String(repeating: "e", count: 201)])
    func namesWithControlCharactersOrTooLongAreRefusedAndNothingIsStored(name: String) async throws {
        try await withService { client, _ in
            await expectStatus(.invalidArgument, "name") {
                _ = try await client.create(
                    .with {
                        $0.name = name; $0.email = "eve@example.com"; $0.password = "eve password"
                    })
            }
            await expectStatus(.invalidArgument, "company") {
                _ = try await client.create(
                    .with {
                        $0.name = "Eve"; $0.company = name; $0.email = "eve@example.com"; $0.password = "eve password"
                    })
            }
        }
        #expect(await repository.credentials(email: "eve@example.com") == nil)
    }

    @Test func repeatedFailedLoginsAreSlowedDownButTheRightPasswordStillWorksAfterTheWait() async throws {
        let throttle = LoginThrottle(
            policy: .init(freeFailures: 2, baseDelay: .milliseconds(300), maximumDelay: .seconds(1)))
        let key = LoginThrottle.key(
            email: "Ewan@example.com", client: ClientAddress.host(ofPeer: "ipv4:127.0.0.1:5000"))
        #expect(
            key
                == LoginThrottle.key(
                    email: "ewan@example.com", client: ClientAddress.host(ofPeer: "ipv4:127.0.0.1:6000")),
            "per address, not per port")
        let start = ContinuousClock.now
        throttle.recordFailure(key, now: start)
        throttle.recordFailure(key, now: start)
        try throttle.check(key, now: start)  // two failures are free
        throttle.recordFailure(key, now: start)
        let throttled = ShippyError(
            .resourceExhausted, "too many failed logins for this email from your address; retry in 1 s", retryAfter: 1)
        #expect(throws: throttled) {
            try throttle.check(key, now: start + .milliseconds(100))
        }
        try throttle.check(key, now: start + .milliseconds(300))
        throttle.recordFailure(key, now: start + .milliseconds(300))
        #expect(throws: ShippyError.self) { try throttle.check(key, now: start + .milliseconds(800)) }
        try throttle.check(key, now: start + .milliseconds(900))  // doubled: 600 ms
        for step in 0..<10 { throttle.recordFailure(key, now: start + .seconds(1 + step)) }
        try throttle.check(key, now: start + .seconds(11))  // never more than the maximum delay: not a lockout
        try throttle.check(LoginThrottle.key(email: "ewan@example.com", client: "10.0.0.9"))
        throttle.recordSuccess(key)
        try throttle.check(key, now: start + .seconds(10))
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
            _ = try? await client.auth(
                .with {
                    $0.email = Self.ewan.email; $0.password = "wrong password"
                })
            let token = try await client.auth(
                .with {
                    $0.email = Self.ewan.email; $0.password = Self.ewan.password
                }
            ).token
            let (_, adminToken) = try await signUp(Self.admin, client)
            let listed = try await client.getAll(User_Request(), metadata: adminToken)
            _ = try await client.validateToken(.with { $0.token = token })
            return (created, token, listed)
        }
        let hash = try #require(await repository.credentials(email: Self.ewan.email)).passwordHash
        let logs = self.logs.all.joined(separator: "\n")
        #expect(!logs.isEmpty)
        for secret in [Self.ewan.password, Self.admin.password, "wrong password", hash, token] {
            #expect(!logs.contains(secret))
            #expect(!"\(created)".contains(secret) && !"\(listed)".contains(secret))
        }
        #expect(created.user.password.isEmpty && listed.users.allSatisfy { $0.password.isEmpty })
        let payload = try #require(Data(base64URL: token.split(separator: ".")[1]))
        let claims = String(decoding: payload, as: UTF8.self)
        #expect(!claims.contains(hash) && !claims.contains(Self.ewan.password) && !claims.contains("password"))
    }
}

/// The development signing key as user-service creates it.
@Suite struct SigningKeyFileTests {
    @Test func aGeneratedKeyIsCreatedPrivateInAPrivateFolderAndReplicasAgreeOnOne() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
            "shippy-keyfile-\(UUID().uuidString)")
        let configuration = SigningKeyConfiguration(
            privateKeyPEM: nil, privateKeyFile: folder.appendingPathComponent("private/signing.pem").path,
            generateKey: true, publicKeyFile: folder.appendingPathComponent("public/public.pem").path)
        // Replicas starting together: every one ends with the same key.
        let keys = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    try SigningKeyLoader.load(configuration, logger: Logger(label: "test")).pemRepresentation
                }
            }
            return try await group.reduce(into: Set<String>()) { $0.insert($1) }
        }
        #expect(keys.count == 1)
        func mode(_ path: String) throws -> Int {
            try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) & 0o777
        }
        #expect(try mode(configuration.privateKeyFile!) == 0o600)
        #expect(try mode(folder.appendingPathComponent("private").path) == 0o700)
        #expect(try mode(configuration.publicKeyFile!) == 0o644)
        let leftovers = try FileManager.default.contentsOfDirectory(
            atPath: folder.appendingPathComponent("private").path)
        #expect(leftovers == ["signing.pem"], "no temporary file is left behind")
    }
}
