import Foundation
import Logging
import PostgresNIO
import ShippyDomain
import ShippyStorage

/// Users in the PostgreSQL table `users`; emails are unique case-insensitively (a unique index on `lower(email)`).
public struct PostgresUserRepository: UserRepository, OutboxRepository {
    private let client: PostgresClient
    private let logger: Logger
    /// How long one statement may take, waiting for a connection included, before it is `.unavailable`.
    private let timeout: Duration

    public init(client: PostgresClient, logger: Logger, timeout: Duration = .seconds(5)) {
        self.client = client
        self.logger = logger
        self.timeout = timeout
    }

    /// Creates or migrates the schema. Idempotent, and safe when replicas start together: the statements
    /// run in one transaction under an advisory lock.
    public func migrate() async throws(ShippyError) {
        let logger = self.logger
        try await run("migrate the schema") { client in
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
                try await connection.query(
                    "CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (created_at) WHERE published_at IS NULL",
                    logger: logger)
            }
        }
    }

    /// Round-trips `SELECT 1`.
    public func ping() async throws(ShippyError) {
        try await run("ping") { client in try await client.query("SELECT 1") }
    }

    public func create(_ user: User, passwordHash: String, event: OutboxEvent) async throws(ShippyError) {
        guard let id = UUID(uuidString: user.id) else { throw .invalidArgument("user id must be a UUID") }
        let logger = self.logger
        do {
            try await run("insert a user") { client in
                try await client.withTransaction(logger: logger) { connection in
                    try await connection.query(
                        """
                        INSERT INTO users (id, name, company, email, password_hash)
                        VALUES (\(id), \(user.name), \(user.company), \(user.email), \(passwordHash))
                        """,
                        logger: logger
                    )
                    try await connection.query(
                        "INSERT INTO outbox (id, subject, payload) VALUES (\(event.id), \(event.subject), \(ByteBuffer(bytes: event.payload)))",
                        logger: logger)
                }
            }
        } catch  where error.code == .alreadyExists {
            throw .alreadyExists("a user with email \(user.email) already exists")
        }
    }

    public func user(id: String) async throws(ShippyError) -> User? {
        guard let uuid = UUID(uuidString: id) else { return nil }
        return try await run("find a user by id") { client in
            let rows = try await client.query("SELECT id, name, company, email FROM users WHERE id = \(uuid)")
            for try await (id, name, company, email) in rows.decode((UUID, String, String, String).self) {
                return User(id: id.uuidString.lowercased(), name: name, company: company, email: email)
            }
            return nil
        }
    }

    public func credentials(email: String) async throws(ShippyError) -> (user: User, passwordHash: String)? {
        try await run("find a user by email") { client in
            let rows = try await client.query(
                "SELECT id, name, company, email, password_hash FROM users WHERE lower(email) = lower(\(email))")
            for try await (id, name, company, email, hash) in rows.decode((UUID, String, String, String, String).self) {
                return (User(id: id.uuidString.lowercased(), name: name, company: company, email: email), hash)
            }
            return nil
        }
    }

    /// Keyset pagination on (`created_at`, `id`); a page token holds the last pair seen, the time in whole
    /// microseconds (PostgreSQL's own precision), so that no row is skipped or repeated.
    public func users(page: PageRequest) async throws(ShippyError) -> Page<User> {
        var cursor: (micros: Int64, id: UUID)?
        if !page.cursor.isEmpty {
            guard page.cursor.count == 2, let micros = Int64(page.cursor[0]), let id = UUID(uuidString: page.cursor[1])
            else { throw PageToken.notIssued }
            cursor = (micros, id)
        }
        let after = cursor
        let limit = page.size + 1
        let fetched = try await run("list users") { client in
            let rows: PostgresRowSequence
            if let after {
                rows = try await client.query(
                    """
                    SELECT id, name, company, email, (extract(epoch FROM created_at) * 1000000)::int8 FROM users
                    WHERE (created_at, id) > (timestamptz 'epoch' + \(after.micros) * interval '1 microsecond', \(after.id))
                    ORDER BY created_at, id LIMIT \(limit)
                    """)
            } else {
                rows = try await client.query(
                    """
                    SELECT id, name, company, email, (extract(epoch FROM created_at) * 1000000)::int8 FROM users
                    ORDER BY created_at, id LIMIT \(limit)
                    """)
            }
            var users: [(micros: Int64, user: User)] = []
            for try await (id, name, company, email, micros) in rows.decode((UUID, String, String, String, Int64).self)
            {
                users.append((micros, User(id: id.uuidString.lowercased(), name: name, company: company, email: email)))
            }
            return users
        }
        return Page(fetched: fetched, size: page.size) { [String($0.micros), $0.user.id] }.map(\.user)
    }

    /// Publishes the outbox's pending events, oldest first, at most `limit` of them, marking each one that
    /// `publish` succeeds for. Rows are locked while this runs (`SKIP LOCKED`), so replicas share the work.
    /// - Returns: how many were published.
    public func publishPending(
        limit: Int,
        _ publish: @escaping @Sendable (OutboxEvent) async throws -> Void
    ) async throws(ShippyError) -> Int {
        let logger = self.logger
        return try await run("publish the outbox") { client in
            try await client.withTransaction(logger: logger) { connection in
                let rows = try await connection.query(
                    """
                    SELECT id, subject, payload FROM outbox WHERE published_at IS NULL
                    ORDER BY created_at LIMIT \(limit) FOR UPDATE SKIP LOCKED
                    """,
                    logger: logger
                )
                var events: [OutboxEvent] = []
                for try await (id, subject, payload) in rows.decode((UUID, String, ByteBuffer).self) {
                    events.append(OutboxEvent(id: id, subject: subject, payload: Array(buffer: payload)))
                }
                var published = 0
                for event in events {
                    do {
                        try await publish(event)
                    } catch {
                        break  // NATS is away: keep the rest for the next round, in order.
                    }
                    try await connection.query(
                        "UPDATE outbox SET published_at = now() WHERE id = \(event.id)", logger: logger)
                    published += 1
                }
                return published
            }
        }
    }

    /// Runs one operation with the deadline, mapping PostgreSQL errors to ours. Logged: the error's code and
    /// SQLSTATE only; never the statement's bound values (they include password hashes).
    private func run<T: Sendable>(
        _ operation: String,
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
            logger.warning("PostgreSQL operation failed", metadata: ["operation": "\(operation)", "error": "\(error)"])
            throw error
        } catch let error as PSQLError {
            let sqlState = error.serverInfo?[.sqlState]
            if sqlState == "23505" { throw .alreadyExists("already exists") }
            logger.warning(
                "PostgreSQL operation failed",
                metadata: [
                    "operation": "\(operation)", "code": "\(error.code)", "sqlstate": "\(sqlState ?? "-")",
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
                "PostgreSQL operation failed", metadata: ["operation": "\(operation)", "error": "\(type(of: error))"])
            throw .unavailable("PostgreSQL is unavailable; try again shortly")
        }
    }
}
