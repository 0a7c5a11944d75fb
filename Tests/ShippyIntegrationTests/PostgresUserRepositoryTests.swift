import Foundation
import Logging
import PostgresNIO
import ShippyDomain
import ShippyPostgres
import ShippyStorage
import ShippyTestSupport
import Synchronization
import Testing

/// Integration tests of the user repository against the harness's real PostgreSQL, one database per test.
/// postgres-nio logs every failed connection attempt at info; these tests make such failures on purpose.
let quietLogger: Logger = {
    var logger = Logger(label: "test")
    logger.logLevel = .warning
    return logger
}()

@Suite(.dropsItsDatabases) struct PostgresUserRepositoryTests {
    func withRepository<T>(
        locale: String? = nil, _ body: (PostgresUserRepository) async throws -> T
    ) async throws -> T {
        try await withClient(locale: locale) { client in
            let repository = PostgresUserRepository(client: client, logger: Logger(label: "test"))
            try await repository.migrate()
            return try await body(repository)
        }
    }

    func withClient<T>(locale: String? = nil, _ body: (PostgresClient) async throws -> T) async throws -> T {
        let url = try await PostgresTestDatabase.create(locale: locale)
        let client = PostgresClient(configuration: try PostgresURL.configuration(url), backgroundLogger: quietLogger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            return try await body(client)
        }
    }

    /// The spellings of Kate's address that a reader would take for hers: case, a Kelvin sign (U+212A, which a
    /// UTF-8 database lowercases to "k" and a C one leaves), an NFD and an NFC accent.
    static let spellings = [
        "KATE@EXAMPLE.COM", " Kate@Example.com ", "\u{212A}ate@example.com", "kat\u{00E9}@example.com",
        "kate\u{0301}@example.com",
    ]

    @Test(arguments: ["C", "C.UTF-8"])
    func everySpellingOfAnAddressIsOneAccountOrRefusedWhateverTheDatabaseLocale(locale: String) async throws {
        try await withRepository(locale: locale) { repository in
            let kate = NewUser(name: "Kate", company: "", email: "Kate@Example.com", password: "p")
            try await repository.create(Self.user(kate.email), passwordHash: "h", event: Self.event())
            var outcomes: [String] = []
            for spelling in Self.spellings {
                guard let canonical = try? EmailAddress.canonical(spelling) else {
                    outcomes.append("refused")
                    continue
                }
                let found = try await repository.credentials(email: canonical)?.user.email
                await #expect(throws: ShippyError.self) {
                    try await repository.create(Self.user(canonical), passwordHash: "h", event: Self.event())
                }
                outcomes.append(found ?? "not found")
            }
            #expect(outcomes == ["kate@example.com", "kate@example.com", "refused", "refused", "refused"])
        }
        // What canonical addresses prevent: the database's own folding depends on its locale.
        try await withClient(locale: locale) { client in
            let rows = try await client.query("SELECT lower(\("\u{212A}ate")) = 'kate'")
            for try await folds in rows.decode(Bool.self) { #expect(folds == (locale == "C.UTF-8")) }
        }
    }

    @Test func theServerCancelsAStatementThatRunsPastTheStatementTimeout() async throws {
        let url = try await PostgresTestDatabase.create()
        let client = PostgresClient(
            configuration: try PostgresURL.configuration(url, statementTimeout: .milliseconds(300)),
            backgroundLogger: quietLogger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            let setting = try await client.query("SHOW statement_timeout")
            for try await value in setting.decode(String.self) { #expect(value == "300ms") }
            do {
                // Errors of a running statement arrive with its rows.
                for try await _ in try await client.query("SELECT pg_sleep(30)") {}
                Issue.record("a 30 s statement ran to its end")
            } catch let error as PSQLError {
                #expect(error.serverInfo?[.sqlState] == "57014", "canceled by statement_timeout")
            }
        }
    }

    static func event() -> OutboxEvent {
        OutboxEvent(id: UUID(), subject: "user.created", payload: [1, 2, 3])
    }

    static func user(_ email: String) -> User {
        User(id: UUID().uuidString.lowercased(), name: "Ann", company: "Acme", email: email)
    }

    @Test func createdUserIsFoundByIdAndByEmailInAnyCase() async throws {
        try await withRepository { repository in
            let ann = Self.user("Ann@Example.com")
            try await repository.create(ann, passwordHash: "$2b$04$hash", event: Self.event())
            #expect(try await repository.user(id: ann.id) == ann)
            let credentials = try #require(try await repository.credentials(email: "ann@EXAMPLE.com"))
            #expect(credentials.user == ann && credentials.passwordHash == "$2b$04$hash")
            #expect(try await repository.user(id: UUID().uuidString) == nil)
            #expect(try await repository.user(id: "not-a-uuid") == nil)
            #expect(try await repository.credentials(email: "nobody@example.com") == nil)
        }
    }

    @Test func aRoleIsGrantedAndRevokedOnlyByAChangeAndEachChangeIsInTheAuditTrail() async throws {
        try await withRepository { repository in
            let ann = Self.user("ann@example.com")
            try await repository.create(ann, passwordHash: "h", event: Self.event())
            #expect(try await repository.user(id: ann.id)?.roles == [.user], "a new user is a plain user")
            let granted = try await repository.change(
                RoleChange(role: .admin, granted: true, email: "ANN@example.com", actor: "operator"))
            #expect(granted?.roles == [.admin])
            #expect(try await repository.credentials(email: "ann@example.com")?.user.roles == [.admin])
            #expect(try await repository.users(page: PageRequest()).items.map(\.roles) == [[.admin]])
            let revoked = try await repository.change(
                RoleChange(role: .admin, granted: false, email: "ann@example.com", actor: ann.id))
            #expect(revoked?.roles == [.user])
            #expect(try await repository.user(id: ann.id)?.roles == [.user])
            #expect(
                try await repository.change(
                    RoleChange(role: .admin, granted: true, email: "nobody@example.com", actor: "operator")) == nil)
            await #expect(throws: ShippyError.self) {
                _ = try await repository.change(
                    RoleChange(role: .user, granted: true, email: "ann@example.com", actor: "operator"))
            }
            let trail = try await repository.roleChanges(of: ann.id)
            #expect(trail.map(\.actor) == ["operator", ann.id] && trail.map(\.granted) == [true, false])
        }
    }

    static func hash(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test func aRefreshTokenRotatesOnceEvenUnderRacingUsesAndEveryWayOfEndingALoginHolds() async throws {
        try await withRepository { repository in
            let ann = Self.user("ann@example.com")
            try await repository.create(ann, passwordHash: "h", event: Self.event())
            let later = Date().addingTimeInterval(3600)
            try await repository.startSession(userID: ann.id, tokenHash: Self.hash("a1"), expiresAt: later)
            #expect(
                try await repository.rotateSession(tokenHash: Self.hash("a1"), to: Self.hash("a2"), expiresAt: later)
                    == .rotated(ann))
            // Two uses of one token at once: one rotates, the other finds it spent and revokes the login.
            async let first = repository.rotateSession(
                tokenHash: Self.hash("a2"), to: Self.hash("a3"), expiresAt: later)
            async let second = repository.rotateSession(
                tokenHash: Self.hash("a2"), to: Self.hash("a4"), expiresAt: later)
            let outcomes = [try await first, try await second]
            #expect(outcomes.contains(.rotated(ann)) && outcomes.contains(.reused), "\(outcomes)")
            for successor in ["a3", "a4"] {
                #expect(
                    try await repository.rotateSession(
                        tokenHash: Self.hash(successor), to: Self.hash("x"), expiresAt: later) == .invalid)
            }
            // Expired, ended one at a time, all at once, or by a new password.
            try await repository.startSession(
                userID: ann.id, tokenHash: Self.hash("old"), expiresAt: Date().addingTimeInterval(-1))
            #expect(
                try await repository.rotateSession(tokenHash: Self.hash("old"), to: Self.hash("y"), expiresAt: later)
                    == .invalid)
            for name in ["b", "c", "d"] {
                try await repository.startSession(userID: ann.id, tokenHash: Self.hash(name), expiresAt: later)
            }
            #expect(try await repository.endSession(tokenHash: Self.hash("b")))
            #expect(try await repository.endSession(tokenHash: Self.hash("b")) == false, "already ended")
            #expect(try await repository.endSessions(userID: ann.id) == 2, "c and d were live")
            try await repository.startSession(userID: ann.id, tokenHash: Self.hash("e"), expiresAt: later)
            try await repository.changePassword(userID: ann.id, passwordHash: "new hash")
            #expect(try await repository.credentials(email: ann.email)?.passwordHash == "new hash")
            #expect(
                try await repository.rotateSession(tokenHash: Self.hash("e"), to: Self.hash("z"), expiresAt: later)
                    == .invalid)
            #expect(try await repository.pruneEndedSessions() == 0, "nothing ended a day ago yet")
        }
    }

    @Test func sameEmailInAnyCaseIsAlreadyExists() async throws {
        try await withRepository { repository in
            try await repository.create(Self.user("bob@example.com"), passwordHash: "h", event: Self.event())
            await #expect(throws: ShippyError.alreadyExists("a user with email BOB@Example.COM already exists")) {
                try await repository.create(Self.user("BOB@Example.COM"), passwordHash: "h", event: Self.event())
            }
        }
    }

    @Test func listsEveryUserOldestFirst() async throws {
        try await withRepository { repository in
            let users = (0..<3).map { Self.user("user\($0)@example.com") }
            for user in users { try await repository.create(user, passwordHash: "h", event: Self.event()) }
            #expect(try await repository.users(page: PageRequest()).items.map(\.email) == users.map(\.email))
            let first = try await repository.users(page: PageRequest(size: 2))
            #expect(first.items.map(\.email) == users.prefix(2).map(\.email) && !first.nextToken.isEmpty)
            let rest = try await repository.users(page: try PageRequest(pageSize: 2, pageToken: first.nextToken))
            #expect(rest.items.map(\.email) == [users[2].email] && rest.nextToken.isEmpty)
        }
    }

    /// A token the service did not issue is `invalidArgument`, whatever it holds: never PostgreSQL's own error.
    @Test(arguments: [["9223372036854775807", UUID().uuidString], ["-9223372036854775807", UUID().uuidString]])
    func aCraftedPageTokenIsInvalidArgument(cursor: [String]) async throws {
        try await withRepository { repository in
            try await repository.create(Self.user("paged@example.com"), passwordHash: "h", event: Self.event())
            let error = await #expect(throws: ShippyError.self) {
                try await repository.users(page: PageRequest(size: 2, cursor: cursor))
            }
            #expect(error?.code == .invalidArgument, "\(String(describing: error))")
        }
    }

    @Test func migrationIsIdempotentWhenReplicasStartTogether() async throws {
        try await withRepository { repository in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<4 { group.addTask { try await repository.migrate() } }
                try await group.waitForAll()
            }
            try await repository.create(Self.user("after@example.com"), passwordHash: "h", event: Self.event())
        }
    }

    @Test func hostileInputIsStoredAsData() async throws {
        try await withRepository { repository in
            var user = Self.user("robert@example.com")
            user.name = "Robert'); DROP TABLE users;--"
            try await repository.create(user, passwordHash: "h", event: Self.event())
            #expect(try await repository.user(id: user.id)?.name == user.name)
        }
    }

    @Test func theEventIsStoredWithTheUserAndPublishedOnceInOrder() async throws {
        try await withRepository { repository in
            let first = Self.event()
            let second = OutboxEvent(id: UUID(), subject: "user.created", payload: [])
            try await repository.create(Self.user("first@example.com"), passwordHash: "h", event: first)
            try await repository.create(Self.user("second@example.com"), passwordHash: "h", event: second)
            // A second sign-up with a taken email stores no event either.
            _ = try? await repository.create(Self.user("FIRST@example.com"), passwordHash: "h", event: Self.event())

            let failing = try await repository.publishPending(limit: 10) { _ in
                throw ShippyError.unavailable("NATS is down")
            }
            #expect(failing == 0)
            let seen = Mutex<[OutboxEvent]>([])
            #expect(try await repository.publishPending(limit: 10) { event in seen.withLock { $0.append(event) } } == 2)
            #expect(seen.withLock { $0 } == [first, second])
            #expect(try await repository.publishPending(limit: 10) { _ in Issue.record("published twice") } == 0)
        }
    }

    /// Each event has a deadline of its own: acknowledgements slower than one batch could bear (six of 500 ms,
    /// three seconds in all, under a two-second statement deadline) still move the outbox on.
    @Test func slowAcknowledgementsStillPublishEveryEvent() async throws {
        let url = try await PostgresTestDatabase.create()
        let client = PostgresClient(configuration: try PostgresURL.configuration(url), backgroundLogger: quietLogger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            // Made and filled under the usual deadline (a migration beside parallel tests may take over a second).
            let filling = PostgresUserRepository(client: client, logger: Logger(label: "test"))
            try await filling.migrate()
            for index in 0..<6 {
                try await filling.create(Self.user("slow\(index)@example.com"), passwordHash: "h", event: Self.event())
            }
            let repository = PostgresUserRepository(client: client, logger: Logger(label: "test"), timeout: .seconds(2))
            let published = try await repository.publishPending(limit: 20) { _ in
                try await Task.sleep(for: .milliseconds(500))
            }
            #expect(published == 6)
            #expect(try await filling.backlog().pending == 0)
        }
    }

    @Test func publishedEventsArePrunedAfterTheirRetention() async throws {
        try await withRepository { repository in
            try await repository.create(Self.user("kept@example.com"), passwordHash: "h", event: Self.event())
            try await repository.create(Self.user("pruned@example.com"), passwordHash: "h", event: Self.event())
            #expect(try await repository.publishPending(limit: 1) { _ in } == 1)
            #expect(try await repository.prunePublished(olderThan: .seconds(3_600)) == 0, "published just now")
            #expect(try await repository.prunePublished(olderThan: .zero) == 1, "only the published one")
            #expect(try await repository.backlog().pending == 1)
        }
    }

    @Test func databaseDownIsUnavailableWithinTheDeadline() async throws {
        let port = try freePort()
        let client = PostgresClient(
            configuration: try PostgresURL.configuration("postgres://shippy:pw@127.0.0.1:\(port)/none?sslmode=disable"),
            backgroundLogger: quietLogger)
        await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            let repository = PostgresUserRepository(client: client, logger: Logger(label: "test"), timeout: .seconds(2))
            await #expect {
                try await repository.ping()
            } throws: { error in
                (error as? ShippyError)?.code == .unavailable
            }
        }
    }

    /// The harness's PostgreSQL takes TLS only, as a production one should: its URL's `verify-full` (with the
    /// development authority) connects encrypted, and so does `require` (unverified, as libpq's); plaintext, and
    /// a certificate checked against another authority, get no connection.
    @Test func theConnectionIsVerifiedTLSAndNeitherPlaintextNorAnotherAuthorityGetsIn() async throws {
        let url = try await PostgresTestDatabase.create()
        #expect(url.contains("sslmode=verify-full"), "the harness's URL: \(PostgresURL.redact(url))")
        var components = try #require(URLComponents(string: url))
        func with(_ parameters: [String: String]) -> String {
            components.queryItems = parameters.map { URLQueryItem(name: $0.key, value: $0.value) }
            return components.string ?? ""
        }
        func withClient<T>(_ url: String, _ body: (PostgresClient) async throws -> T) async throws -> T {
            let client = PostgresClient(
                configuration: try PostgresURL.configuration(url), backgroundLogger: quietLogger)
            return try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await client.run() }
                defer { group.cancelAll() }
                return try await body(client)
            }
        }
        for accepted in [url, with(["sslmode": "require"])] {
            let encrypted = try await withClient(accepted) { client in
                let rows = try await client.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                return try await rows.decode(Bool.self).first { _ in true }
            }
            #expect(encrypted == true, "\(PostgresURL.redact(accepted))")
        }
        let stranger = try TestAuthority(name: "Another CA")
        for refused in [
            with(["sslmode": "disable"]), with(["sslmode": "verify-full", "sslrootcert": stranger.bundle]),
            with(["sslmode": "require", "sslrootcert": stranger.bundle]),
        ] {
            try await withClient(refused) { client in
                let repository = PostgresUserRepository(client: client, logger: quietLogger, timeout: .seconds(2))
                await #expect(throws: ShippyError.self, "\(PostgresURL.redact(refused))") {
                    try await repository.ping()
                }
            }
        }
    }

    @Test func malformedURLsAreRejectedWithoutEchoingThePassword() {
        for url in [
            "mysql://u:secret@h/db", "postgres://:secret@h/db", "postgres://u:secret@/db",
            "postgres://u:secret@h/db?sslmode=maybe", "postgres://u:secret@h/db?sslrootcert=/nowhere/ca.pem",
        ] {
            #expect {
                _ = try PostgresURL.configuration(url)
            } throws: { error in
                (error as? ShippyError)?.code == .invalidArgument && !"\(error)".contains("secret")
            }
        }
        #expect(PostgresURL.redact("postgres://u:secret@h:5432/db") == "postgres://u:***@h:5432/db")
    }
}
