import Foundation
import Logging
import Metrics
import OTelSemanticConventions
import PostgresNIO
import ShippyDomain
import ShippyStorage
import ShippyTelemetry
import Synchronization

/// Users in the PostgreSQL table `users`; emails are unique case-insensitively (a unique index on `lower(email)`).
public struct PostgresUserRepository: UserRepository, OutboxRepository {
    private let client: PostgresClient
    private let logger: Logger
    /// How long one statement may take, waiting for a connection included, before it is `.unavailable`.
    private let timeout: Duration
    private let pool: PoolUse

    /// - Parameter maximumConnections: the client's pool size, to tell statements running from those waiting.
    public init(client: PostgresClient, logger: Logger, timeout: Duration = .seconds(5), maximumConnections: Int = 20) {
        self.client = client
        self.logger = logger
        self.timeout = timeout
        self.pool = PoolUse(maximumConnections: maximumConnections)
    }

    /// Creates or migrates the schema. Idempotent, and safe when replicas start together: the statements
    /// run in one transaction under an advisory lock.
    public func migrate() async throws(ShippyError) {
        let logger = self.logger
        try await run("MIGRATE", "users") { client in
            try await client.withTransaction(logger: logger) { connection in
                try await connection.query("SELECT pg_advisory_xact_lock(4242001)", logger: logger)
                try await connection.query(
                    """
                    CREATE TABLE IF NOT EXISTS users (
                        id uuid PRIMARY KEY,
                        name text NOT NULL,
                        company text NOT NULL DEFAULT '',
                        email text NOT NULL,
                        password_hash text NOT NULL,
                        created_at timestamptz NOT NULL DEFAULT now()
                    )
                    """,
                    logger: logger
                )
                try await connection.query(
                    "CREATE UNIQUE INDEX IF NOT EXISTS users_email_lower_key ON users (lower(email))", logger: logger)
                try await connection.query(
                    """
                    CREATE TABLE IF NOT EXISTS outbox (
                        id uuid PRIMARY KEY,
                        subject text NOT NULL,
                        payload bytea NOT NULL,
                        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
                        published_at timestamptz
                    )
                    """,
                    logger: logger
                )
                // The event's trace context, as JSON text ({"traceparent": "00-…"}); added after the first release.
                try await connection.query(
                    "ALTER TABLE outbox ADD COLUMN IF NOT EXISTS trace_context text NOT NULL DEFAULT '{}'",
                    logger: logger)
                // Dead letters: events the broker refused for good, set aside with the reason (added later).
                try await connection.query(
                    """
                    ALTER TABLE outbox ADD COLUMN IF NOT EXISTS dead_at timestamptz,
                        ADD COLUMN IF NOT EXISTS dead_reason text
                    """,
                    logger: logger)
                // Roles are granted, never claimed: stored with the user, changed only by `change(_:)` (added later).
                try await connection.query(
                    "ALTER TABLE users ADD COLUMN IF NOT EXISTS admin boolean NOT NULL DEFAULT false", logger: logger)
                try await connection.query(
                    """
                    CREATE TABLE IF NOT EXISTS role_changes (
                        id bigserial PRIMARY KEY,
                        at timestamptz NOT NULL DEFAULT clock_timestamp(),
                        actor text NOT NULL,
                        user_id uuid NOT NULL REFERENCES users (id),
                        role text NOT NULL,
                        granted boolean NOT NULL
                    )
                    """,
                    logger: logger)
                // Logins: the SHA-256 of each refresh token, the login (family) it rotates within (added later).
                try await connection.query(
                    """
                    CREATE TABLE IF NOT EXISTS sessions (
                        token_hash bytea PRIMARY KEY,
                        family uuid NOT NULL,
                        user_id uuid NOT NULL REFERENCES users (id),
                        created_at timestamptz NOT NULL DEFAULT now(),
                        expires_at timestamptz NOT NULL,
                        spent_at timestamptz,
                        revoked_at timestamptz
                    )
                    """,
                    logger: logger)
                try await connection.query(
                    "CREATE INDEX IF NOT EXISTS sessions_family ON sessions (family)", logger: logger)
                try await connection.query(
                    "CREATE INDEX IF NOT EXISTS sessions_user ON sessions (user_id) WHERE revoked_at IS NULL",
                    logger: logger)
                try await connection.query("DROP INDEX IF EXISTS outbox_pending", logger: logger)
                try await connection.query(
                    """
                    CREATE INDEX IF NOT EXISTS outbox_waiting ON outbox (created_at)
                    WHERE published_at IS NULL AND dead_at IS NULL
                    """,
                    logger: logger)
            }
        }
    }

    /// Round-trips `SELECT 1`.
    public func ping() async throws(ShippyError) {
        try await run("SELECT", "ping") { client in try await client.query("SELECT 1") }
    }

    public func create(_ user: User, passwordHash: String, event: OutboxEvent) async throws(ShippyError) {
        guard let id = UUID(uuidString: user.id) else { throw .invalidArgument("user id must be a UUID") }
        let logger = self.logger
        do {
            try await run("INSERT", "users") { client in
                try await client.withTransaction(logger: logger) { connection in
                    try await connection.query(
                        """
                        INSERT INTO users (id, name, company, email, password_hash)
                        VALUES (\(id), \(user.name), \(user.company), \(user.email), \(passwordHash))
                        """,
                        logger: logger
                    )
                    try await connection.query(Self.outboxInsert(event), logger: logger)
                }
            }
        } catch  where error.code == .alreadyExists {
            throw .alreadyExists("a user with email \(user.email) already exists")
        }
    }

    /// The columns of a `User`, in `Row`'s order.
    private static let userColumns = "id, name, company, email, admin"
    private typealias Row = (UUID, String, String, String, Bool)

    private static func user(_ row: Row) -> User {
        User(
            id: row.0.uuidString.lowercased(), name: row.1, company: row.2, email: row.3,
            roles: Role.roles(admin: row.4))
    }

    public func record(_ event: OutboxEvent) async throws(ShippyError) {
        try await run("INSERT", "outbox") { client in try await client.query(Self.outboxInsert(event)) }
    }

    /// The row of `event` in the outbox, written in the transaction of the change it announces (or alone).
    private static func outboxInsert(_ event: OutboxEvent) -> PostgresQuery {
        """
        INSERT INTO outbox (id, subject, payload, trace_context)
        VALUES (\(event.id), \(event.subject), \(ByteBuffer(bytes: event.payload)), \(json(event.traceContext)))
        """
    }

    public func user(id: String) async throws(ShippyError) -> User? {
        guard let uuid = UUID(uuidString: id) else { return nil }
        return try await run("SELECT", "users") { client in
            let rows = try await client.query(
                "SELECT \(unescaped: Self.userColumns) FROM users WHERE id = \(uuid)")
            for try await row in rows.decode(Row.self) { return Self.user(row) }
            return nil
        }
    }

    public func credentials(email: String) async throws(ShippyError) -> (user: User, passwordHash: String)? {
        try await run("SELECT", "users") { client in
            let rows = try await client.query(
                """
                SELECT \(unescaped: Self.userColumns), password_hash FROM users WHERE lower(email) = lower(\(email))
                """)
            for try await (id, name, company, email, admin, hash) in rows.decode(
                (UUID, String, String, String, Bool, String).self)
            {
                return (Self.user((id, name, company, email, admin)), hash)
            }
            return nil
        }
    }

    public func change(_ change: RoleChange) async throws(ShippyError) -> User? {
        guard change.role == .admin else { throw .invalidArgument("only the admin role is granted or revoked") }
        let logger = self.logger
        return try await run("UPDATE", "users") { client in
            try await client.withTransaction(logger: logger) { connection in
                let rows = try await connection.query(
                    """
                    UPDATE users SET admin = \(change.granted) WHERE lower(email) = lower(\(change.email))
                    RETURNING \(unescaped: Self.userColumns)
                    """,
                    logger: logger)
                var changed: User?
                for try await row in rows.decode(Row.self) { changed = Self.user(row) }
                guard let changed, let id = UUID(uuidString: changed.id) else { return nil }
                try await connection.query(
                    """
                    INSERT INTO role_changes (actor, user_id, role, granted)
                    VALUES (\(change.actor), \(id), \(change.role.rawValue), \(change.granted))
                    """,
                    logger: logger)
                return changed
            }
        }
    }

    public func startSession(userID: String, tokenHash: [UInt8], expiresAt: Date) async throws(ShippyError) {
        guard let id = UUID(uuidString: userID) else { throw .invalidArgument("user id must be a UUID") }
        let hash = ByteBuffer(bytes: tokenHash)
        try await run("INSERT", "sessions") { client in
            try await client.query(
                """
                INSERT INTO sessions (token_hash, family, user_id, expires_at)
                VALUES (\(hash), \(UUID()), \(id), \(expiresAt))
                """)
        }
    }

    public func rotateSession(
        tokenHash: [UInt8], to successor: [UInt8], expiresAt: Date
    ) async throws(ShippyError) -> SessionRotation {
        let logger = self.logger
        let (hash, next) = (ByteBuffer(bytes: tokenHash), ByteBuffer(bytes: successor))
        return try await run("UPDATE", "sessions") { client in
            try await client.withTransaction(logger: logger) { connection in
                let rows = try await connection.query(
                    """
                    SELECT family, user_id, expires_at > now(), spent_at IS NOT NULL, revoked_at IS NOT NULL
                    FROM sessions WHERE token_hash = \(hash) FOR UPDATE
                    """,
                    logger: logger)
                var found: (family: UUID, userID: UUID, live: Bool, spent: Bool, revoked: Bool)?
                for try await row in rows.decode((UUID, UUID, Bool, Bool, Bool).self) { found = row }
                guard let found, !found.revoked, found.live else { return .invalid }
                guard !found.spent else {
                    try await connection.query(
                        "UPDATE sessions SET revoked_at = now() WHERE family = \(found.family) AND revoked_at IS NULL",
                        logger: logger)
                    return .reused
                }
                try await connection.query(
                    "UPDATE sessions SET spent_at = now() WHERE token_hash = \(hash)", logger: logger)
                try await connection.query(
                    """
                    INSERT INTO sessions (token_hash, family, user_id, expires_at)
                    VALUES (\(next), \(found.family), \(found.userID), \(expiresAt))
                    """,
                    logger: logger)
                let users = try await connection.query(
                    "SELECT \(unescaped: Self.userColumns) FROM users WHERE id = \(found.userID)", logger: logger)
                for try await row in users.decode(Row.self) { return .rotated(Self.user(row)) }
                return .invalid
            }
        }
    }

    public func endSession(tokenHash: [UInt8]) async throws(ShippyError) -> Bool {
        let hash = ByteBuffer(bytes: tokenHash)
        return try await countLogins(
            """
            WITH revoked AS (
                UPDATE sessions SET revoked_at = now()
                WHERE revoked_at IS NULL AND family = (SELECT family FROM sessions WHERE token_hash = \(hash))
                RETURNING family, spent_at IS NULL AND expires_at > now() AS live
            ) SELECT count(DISTINCT family) FILTER (WHERE live) FROM revoked
            """) > 0
    }

    public func endSessions(userID: String) async throws(ShippyError) -> Int {
        guard let id = UUID(uuidString: userID) else { return 0 }
        return try await countLogins(
            """
            WITH revoked AS (
                UPDATE sessions SET revoked_at = now() WHERE revoked_at IS NULL AND user_id = \(id)
                RETURNING family, spent_at IS NULL AND expires_at > now() AS live
            ) SELECT count(DISTINCT family) FILTER (WHERE live) FROM revoked
            """)
    }

    /// Runs a revocation that counts the logins it ended.
    private func countLogins(_ query: PostgresQuery) async throws(ShippyError) -> Int {
        try await run("UPDATE", "sessions") { client in
            let rows = try await client.query(query)
            for try await count in rows.decode(Int64.self) { return Int(count) }
            return 0
        }
    }

    public func changePassword(userID: String, passwordHash: String) async throws(ShippyError) {
        guard let id = UUID(uuidString: userID) else { throw .invalidArgument("user id must be a UUID") }
        let logger = self.logger
        try await run("UPDATE", "users") { client in
            try await client.withTransaction(logger: logger) { connection in
                try await connection.query(
                    "UPDATE users SET password_hash = \(passwordHash) WHERE id = \(id)", logger: logger)
                try await connection.query(
                    "UPDATE sessions SET revoked_at = now() WHERE user_id = \(id) AND revoked_at IS NULL",
                    logger: logger)
            }
        }
    }

    /// Deletes the sessions that ended more than a day ago (expired or revoked): they can never be used again.
    /// - Returns: how many were deleted.
    public func pruneEndedSessions() async throws(ShippyError) -> Int {
        try await run("DELETE", "sessions") { client in
            let rows = try await client.query(
                """
                WITH pruned AS (
                    DELETE FROM sessions WHERE least(expires_at, coalesce(revoked_at, expires_at)) < now() - interval '1 day'
                    RETURNING 1
                ) SELECT count(*) FROM pruned
                """)
            for try await count in rows.decode(Int64.self) { return Int(count) }
            return 0
        }
    }

    /// The audit trail of one user's roles, oldest first.
    public func roleChanges(of userID: String) async throws(ShippyError) -> [RoleChange] {
        guard let id = UUID(uuidString: userID) else { return [] }
        return try await run("SELECT", "role_changes") { client in
            let rows = try await client.query(
                """
                SELECT c.role, c.granted, u.email, c.actor FROM role_changes c JOIN users u ON u.id = c.user_id
                WHERE c.user_id = \(id) ORDER BY c.id
                """)
            var changes: [RoleChange] = []
            for try await (role, granted, email, actor) in rows.decode((String, Bool, String, String).self) {
                changes.append(
                    RoleChange(role: Role(rawValue: role) ?? .user, granted: granted, email: email, actor: actor))
            }
            return changes
        }
    }

    /// Creation times a page token can hold: the epoch to the end of year 9999, in microseconds.
    private static let issuableMicros: ClosedRange<Int64> = 0...253_402_300_799_999_999

    /// Keyset pagination on (`created_at`, `id`); a page token holds the last pair seen, the time in whole
    /// microseconds (PostgreSQL's own precision), so that no row is skipped or repeated.
    public func users(page: PageRequest) async throws(ShippyError) -> Page<User> {
        var cursor: (micros: Int64, id: UUID)?
        if !page.cursor.isEmpty {
            // A time outside what PostgreSQL can add to the epoch was never issued (and would be its error, a 500).
            guard page.cursor.count == 2, let micros = Int64(page.cursor[0]), Self.issuableMicros.contains(micros),
                let id = UUID(uuidString: page.cursor[1])
            else { throw PageToken.notIssued }
            cursor = (micros, id)
        }
        let after = cursor
        let limit = page.size + 1
        let fetched = try await run("SELECT", "users") { client in
            let rows: PostgresRowSequence
            if let after {
                rows = try await client.query(
                    """
                    SELECT \(unescaped: Self.userColumns), (extract(epoch FROM created_at) * 1000000)::int8
                    FROM users WHERE (created_at, id) > (timestamptz 'epoch' + \(after.micros) * interval '1 microsecond', \(after.id))
                    ORDER BY created_at, id LIMIT \(limit)
                    """)
            } else {
                rows = try await client.query(
                    """
                    SELECT \(unescaped: Self.userColumns), (extract(epoch FROM created_at) * 1000000)::int8
                    FROM users ORDER BY created_at, id LIMIT \(limit)
                    """)
            }
            var users: [(micros: Int64, user: User)] = []
            for try await (id, name, company, email, admin, micros) in rows.decode(
                (UUID, String, String, String, Bool, Int64).self)
            {
                users.append((micros, Self.user((id, name, company, email, admin))))
            }
            return users
        }
        return Page(fetched: fetched, size: page.size) { [String($0.micros), $0.user.id] }.map(\.user)
    }

    /// Publishes the outbox's pending events, oldest first, at most `limit` of them, one transaction and one
    /// deadline each. The row is locked while it is published (`SKIP LOCKED`), so replicas share the work.
    /// - Returns: how many were published.
    public func publishPending(
        limit: Int,
        _ publish: @escaping @Sendable (OutboxEvent) async throws -> Void
    ) async throws(ShippyError) -> Int {
        var published = 0
        for _ in 0..<limit {
            switch try await publishOldest(publish) {
            case .published: published += 1
            case .deadLettered: continue
            case .nothingWaits, .failed: return published
            }
        }
        return published
    }

    private enum PublishOutcome { case published, deadLettered, nothingWaits, failed }

    private func publishOldest(
        _ publish: @escaping @Sendable (OutboxEvent) async throws -> Void
    ) async throws(ShippyError) -> PublishOutcome {
        let logger = self.logger
        return try await run("UPDATE", "outbox") { client in
            try await client.withTransaction(logger: logger) { connection in
                let rows = try await connection.query(
                    """
                    SELECT id, subject, payload, trace_context FROM outbox
                    WHERE published_at IS NULL AND dead_at IS NULL
                    ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED
                    """,
                    logger: logger
                )
                var oldest: OutboxEvent?
                for try await (id, subject, payload, trace) in rows.decode((UUID, String, ByteBuffer, String).self) {
                    oldest = OutboxEvent(
                        id: id, subject: subject, payload: Array(buffer: payload),
                        traceContext: Self.headers(json: trace))
                }
                guard let event = oldest else { return .nothingWaits }
                do {
                    try await publish(event)
                } catch let error as ShippyError where error.code == .invalidArgument {
                    logger.error(
                        "the broker refuses an event for good: set aside as a dead letter",
                        metadata: ["event_id": "\(event.id)", "subject": "\(event.subject)", "error": "\(error)"])
                    Counter(label: "outbox_dead_lettered_total").increment()
                    try await connection.query(
                        "UPDATE outbox SET dead_at = now(), dead_reason = \(error.message) WHERE id = \(event.id)",
                        logger: logger)
                    return .deadLettered
                } catch {
                    return .failed  // NATS is away: keep it and the rest for the next round, in order.
                }
                try await connection.query(
                    "UPDATE outbox SET published_at = now() WHERE id = \(event.id)", logger: logger)
                return .published
            }
        }
    }

    public func backlog() async throws(ShippyError) -> OutboxBacklog {
        try await run("SELECT", "outbox") { client in
            let rows = try await client.query(
                """
                SELECT count(*) FILTER (WHERE dead_at IS NULL),
                    coalesce((extract(epoch FROM clock_timestamp() - min(created_at) FILTER (WHERE dead_at IS NULL))
                        * 1000)::int8, 0),
                    count(*) FILTER (WHERE dead_at IS NOT NULL)
                FROM outbox WHERE published_at IS NULL
                """)
            for try await (count, milliseconds, dead) in rows.decode((Int64, Int64, Int64).self) {
                return OutboxBacklog(
                    pending: Int(count), oldestAge: .milliseconds(milliseconds), deadLettered: Int(dead))
            }
            return OutboxBacklog(pending: 0, oldestAge: .zero)
        }
    }

    public func prunePublished(olderThan age: Duration) async throws(ShippyError) -> Int {
        let seconds = Double(age.milliseconds) / 1000
        return try await run("DELETE", "outbox") { client in
            let rows = try await client.query(
                """
                WITH pruned AS (
                    DELETE FROM outbox WHERE published_at < now() - make_interval(secs => \(seconds)) RETURNING 1
                ) SELECT count(*) FROM pruned
                """)
            for try await count in rows.decode(Int64.self) { return Int(count) }
            return 0
        }
    }

    private static func json(_ headers: [String: String]) -> String {
        (try? JSONSerialization.data(withJSONObject: headers, options: [.sortedKeys]))
            .map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    private static func headers(json: String) -> [String: String] {
        (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: String] ?? [:]
    }

    /// Runs one operation with the deadline, in a client span named after the operation and its table
    /// (`SELECT users`), mapping PostgreSQL errors to ours. Logged and traced: the error's code and SQLSTATE
    /// only; never the statement's bound values (they include password hashes).
    private func run<T: Sendable>(
        _ operation: String,
        _ table: String,
        _ body: @escaping @Sendable (PostgresClient) async throws -> T
    ) async throws(ShippyError) -> T {
        try await traced(
            "\(operation) \(table)",
            attributes: [
                OTelAttribute.db.system.name: "postgresql", OTelAttribute.db.operation.name: operation,
                OTelAttribute.db.collection.name: table,
            ]
        ) { () async throws(ShippyError) in
            pool.begin()
            defer { pool.end() }
            return try await runMappingErrors(operation, table, body)
        }
    }

    private func runMappingErrors<T: Sendable>(
        _ operation: String,
        _ table: String,
        _ body: @escaping @Sendable (PostgresClient) async throws -> T
    ) async throws(ShippyError) -> T {
        let client = self.client
        do {
            do {
                return try await withDeadline(timeout, unavailable: "PostgreSQL") { try await body(client) }
            } catch let error as PostgresTransactionError {
                // The statement's own error is what matters, not the transaction around it.
                throw error.closureError ?? error.beginError ?? error.commitError ?? error
            }
        } catch let error as ShippyError {
            logger.warning(
                "PostgreSQL operation failed", metadata: ["operation": "\(operation) \(table)", "error": "\(error)"])
            throw error
        } catch let error as PSQLError {
            let sqlState = error.serverInfo?[.sqlState]
            if sqlState == "23505" { throw .alreadyExists("already exists") }
            logger.warning(
                "PostgreSQL operation failed",
                metadata: [
                    "operation": "\(operation) \(table)", "code": "\(error.code)", "sqlstate": "\(sqlState ?? "-")",
                    "message": "\(error.serverInfo?[.message] ?? "-")",
                ]
            )
            switch error.code {
            case .server, .messageDecodingFailure, .invalidCommandTag, .tooManyParameters:
                throw ShippyError(.internal, "the user store failed to complete the request")
            default:
                throw .unavailable("PostgreSQL is unavailable; try again shortly")
            }
        } catch {
            logger.warning(
                "PostgreSQL operation failed",
                metadata: ["operation": "\(operation) \(table)", "error": "\(type(of: error))"])
            throw .unavailable("PostgreSQL is unavailable; try again shortly")
        }
    }
}

/// The pool's use as Prometheus sees it: `postgres_pool_connections_in_use` and `postgres_pool_waiting`, from the
/// statements under way and the pool's size (postgres-nio keeps its own pool figures internal).
private final class PoolUse: Sendable {
    let maximumConnections: Int
    private let underWay = Atomic(0)
    private let inUse = Gauge(label: "postgres_pool_connections_in_use")
    private let waiting = Gauge(label: "postgres_pool_waiting")

    init(maximumConnections: Int) { self.maximumConnections = maximumConnections }

    func begin() { record(underWay.wrappingAdd(1, ordering: .relaxed).newValue) }
    func end() { record(underWay.wrappingSubtract(1, ordering: .relaxed).newValue) }

    private func record(_ statements: Int) {
        inUse.record(min(statements, maximumConnections))
        waiting.record(max(0, statements - maximumConnections))
    }
}
