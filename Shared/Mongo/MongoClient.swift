import CMongoc
import Logging
import Metrics
import NIOPosix
import OTelSemanticConventions
import ShippyDomain
import ShippyTelemetry
import Synchronization

/// The process's MongoDB connection: one `mongoc_client_pool_t`, and the bounded thread pool on which
/// every blocking libmongoc call runs, so that none blocks Swift's cooperative executor.
public final class MongoClient: Sendable {
    /// `mongoc_client_pool_t` is thread-safe by libmongoc's contract; each client popped from it is used
    /// by one pool thread at a time and pushed back before that thread takes other work.
    private nonisolated(unsafe) let pool: OpaquePointer
    private let threads: NIOThreadPool
    private let logger: Logger
    /// The database that holds our collections.
    public let database: String
    /// The server's URL with any credentials removed: the only form of it that may be logged.
    public let redactedURL: String
    /// The server-side time limit of each query and update (`maxTimeMS`).
    private let maxTimeMS: Int64
    /// Operations waiting for a pool thread.
    private let waiting = Atomic(0)
    /// Operations that may wait for a thread at once; past it an operation is refused at once (`unavailable`),
    /// rather than joining a queue its caller would time out in.
    public static let maximumQueue = 1_024
    private let queue = Gauge(label: "mongo_pool_queue_depth")
    private let queueWait = Metrics.Timer(label: "mongo_pool_wait_seconds")

    /// Driver-wide initialisation, done once per process before the first pool exists.
    private static let driverInitialised: Void = mongoc_init()

    /// Creates the pool; no connection is made until the first operation.
    /// - Parameters:
    ///   - url: A `mongodb://` connection string. Without `serverSelectionTimeoutMS` it gets 1000 ms, so
    ///     that a call fails fast with `.unavailable` while the server is down instead of hanging.
    ///   - threads: How many blocking calls may run at once; also the pool's maximum number of clients.
    ///   - timeout: How long one operation may take. The server stops a query or an update after it
    ///     (`maxTimeMS`), and a server that stops answering fails the call a second later (`socketTimeoutMS`,
    ///     unless the URL sets it), so that no pool thread stays blocked: libmongoc's own default is 5 minutes.
    /// - Throws: `ShippyError` `.invalidArgument` when the URL cannot be parsed.
    public init(
        url: String,
        database: String,
        threads: Int,
        timeout: Duration = .seconds(5),
        logger: Logger
    ) throws(ShippyError) {
        _ = Self.driverInitialised
        var error = bson_error_t()
        guard let uri = mongoc_uri_new_with_error(url, &error) else {
            throw .invalidArgument("not a MongoDB connection string: \(MongoError(error).message)")
        }
        defer { mongoc_uri_destroy(uri) }
        if !mongoc_uri_has_option(uri, "serverSelectionTimeoutMS") {
            mongoc_uri_set_option_as_int32(uri, "serverSelectionTimeoutMS", 1000)
        }
        // A server whose address vanished (a stopped container) drops packets: without this, libmongoc's
        // monitor waits 10 s in connect, and the process in its shutdown (seen under `compose stop`).
        if !mongoc_uri_has_option(uri, "connectTimeoutMS") {
            mongoc_uri_set_option_as_int32(uri, "connectTimeoutMS", 2000)
        }
        if !mongoc_uri_has_option(uri, "socketTimeoutMS") {
            mongoc_uri_set_option_as_int32(uri, "socketTimeoutMS", Int32(clamping: timeout.milliseconds + 1000))
        }
        guard let pool = mongoc_client_pool_new_with_error(uri, &error) else {
            throw .invalidArgument("cannot use MongoDB connection string: \(MongoError(error).message)")
        }
        mongoc_client_pool_set_error_api(pool, 2)
        mongoc_client_pool_max_size(pool, UInt32(threads))
        self.pool = pool
        self.threads = NIOThreadPool(numberOfThreads: threads)
        self.threads.start()
        self.database = database
        self.redactedURL = Self.redact(url)
        self.maxTimeMS = max(1, timeout.milliseconds)
        self.logger = logger
    }

    deinit {
        mongoc_client_pool_destroy(pool)
    }

    /// Stops the thread pool; calls made afterwards fail with `.unavailable`.
    public func shutdown() async {
        try? await threads.shutdownGracefully()
    }

    /// Removes `user:password@` from a connection string.
    public static func redact(_ url: String) -> String {
        redactingCredentials(url)
    }

    // MARK: Operations

    /// Round-trips a `ping` to the server.
    public func ping() async throws(ShippyError) {
        try await run("ping", nil) { client in
            try command(client, ["ping": .int32(1)])
        }
    }

    /// Drops this client's database with everything in it: tests remove what they stored.
    public func dropDatabase() async throws(ShippyError) {
        let database = database
        try await run("dropDatabase", nil) { client in
            try command(client, ["dropDatabase": .int32(1)], database: database)
        }
    }

    /// Inserts one document.
    /// - Throws: `ShippyError` `.alreadyExists` on a duplicate key, `.unavailable`, `.internal`.
    public func insertOne(_ document: BSONFields, into collection: String) async throws(ShippyError) {
        try await run("insert", collection) { client in
            try self.withCollection(client, collection) { handle in
                var error = bson_error_t()
                let inserted = document.withBSON { mongoc_collection_insert_one(handle, $0, nil, nil, &error) }
                guard inserted else { throw MongoError(error) }
            }
        }
    }

    /// The documents matching `filter`, in `sort` order, at most `limit` of them (0: no limit), with only the
    /// fields `projection` keeps (e.g. `["holds": 0]` leaves a field out; empty: every field).
    public func find(
        in collection: String,
        filter: BSONFields,
        sort: BSONFields = [:],
        limit: Int64 = 0,
        projection: BSONFields = [:]
    ) async throws(ShippyError) -> [BSONFields] {
        try await run("find", collection) { client in
            try self.withCollection(client, collection) { handle in
                var options: BSONFields = ["maxTimeMS": .int64(self.maxTimeMS)]
                if !sort.fields.isEmpty { options.fields.append((key: "sort", value: .document(sort))) }
                if !projection.fields.isEmpty {
                    options.fields.append((key: "projection", value: .document(projection)))
                }
                if limit > 0 {
                    // All of it in the first reply, and the server closes the cursor: no getMore, no killCursors.
                    options.fields += [
                        (key: "limit", value: .int64(limit)), (key: "batchSize", value: .int64(limit)),
                        (key: "singleBatch", value: .bool(true)),
                    ]
                }
                let cursor = filter.withBSON { filter in
                    options.withBSON { options in mongoc_collection_find_with_opts(handle, filter, options, nil) }
                }
                defer { mongoc_cursor_destroy(cursor) }
                var documents: [BSONFields] = []
                var current: OpaquePointer?
                while mongoc_cursor_next(cursor, &current), let current {
                    documents.append(BSONDocument.fields(of: current))
                }
                var error = bson_error_t()
                if mongoc_cursor_error(cursor, &error) { throw MongoError(error) }
                return documents
            }
        }
    }

    /// How many documents match `filter`.
    public func count(in collection: String, filter: BSONFields = [:]) async throws(ShippyError) -> Int64 {
        try await run("count", collection) { client in
            try self.withCollection(client, collection) { handle in
                var error = bson_error_t()
                let options: BSONFields = ["maxTimeMS": .int64(self.maxTimeMS)]
                let count = filter.withBSON { filter in
                    options.withBSON { mongoc_collection_count_documents(handle, filter, $0, nil, nil, &error) }
                }
                guard count >= 0 else { throw MongoError(error) }
                return count
            }
        }
    }

    /// Atomically updates the first document matching `filter` in `sort` order and returns it as it is
    /// after the update, or `nil` when none matches: the one-step conditional update that bookings rely on.
    /// - Throws: `ShippyError` `.alreadyExists` on a duplicate key, `.unavailable`, `.internal`.
    public func findOneAndUpdate(
        in collection: String,
        filter: BSONFields,
        update: BSONFields,
        sort: BSONFields = [:],
        projection: BSONFields = [:]
    ) async throws(ShippyError) -> BSONFields? {
        try await run("findAndModify", collection) { client in
            try self.withCollection(client, collection) { handle in
                let options = mongoc_find_and_modify_opts_new()!
                defer { mongoc_find_and_modify_opts_destroy(options) }
                update.withBSON { _ = mongoc_find_and_modify_opts_set_update(options, $0) }
                if !sort.fields.isEmpty { sort.withBSON { _ = mongoc_find_and_modify_opts_set_sort(options, $0) } }
                if !projection.fields.isEmpty {
                    projection.withBSON { _ = mongoc_find_and_modify_opts_set_fields(options, $0) }
                }
                _ = mongoc_find_and_modify_opts_set_flags(options, MONGOC_FIND_AND_MODIFY_RETURN_NEW)
                _ = mongoc_find_and_modify_opts_set_max_time_ms(options, UInt32(clamping: self.maxTimeMS))
                return try withReply { reply in
                    var error = bson_error_t()
                    let succeeded = filter.withBSON {
                        mongoc_collection_find_and_modify_with_opts(handle, $0, options, reply, &error)
                    }
                    guard succeeded else { throw MongoError(error) }
                    if case .document(let value)? = BSONDocument.fields(of: reply)["value"] { return value }
                    return nil
                }
            }
        }
    }

    /// Updates the first document matching `filter`; returns how many matched (0 or 1).
    /// - Throws: `ShippyError` `.alreadyExists` on a duplicate key, `.unavailable`, `.internal`.
    @discardableResult
    public func updateOne(
        in collection: String, filter: BSONFields, update: BSONFields
    ) async throws(ShippyError)
        -> Int64
    {
        try await self.update(collection, filter, update, many: false)
    }

    /// Updates every document matching `filter`; returns how many matched.
    @discardableResult
    public func updateMany(
        in collection: String, filter: BSONFields, update: BSONFields
    ) async throws(ShippyError)
        -> Int64
    {
        try await self.update(collection, filter, update, many: true)
    }

    private func update(
        _ collection: String, _ filter: BSONFields, _ update: BSONFields, many: Bool
    ) async throws(ShippyError)
        -> Int64
    {
        try await run("update", collection) { client in
            try self.withCollection(client, collection) { handle in
                try withReply { reply in
                    var error = bson_error_t()
                    let succeeded = filter.withBSON { filter in
                        update.withBSON {
                            many
                                ? mongoc_collection_update_many(handle, filter, $0, nil, reply, &error)
                                : mongoc_collection_update_one(handle, filter, $0, nil, reply, &error)
                        }
                    }
                    guard succeeded else { throw MongoError(error) }
                    return BSONDocument.fields(of: reply)["matchedCount"]?.int64Value ?? 0
                }
            }
        }
    }

    /// Deletes every document matching `filter`; returns how many were deleted.
    @discardableResult
    public func deleteMany(in collection: String, filter: BSONFields) async throws(ShippyError) -> Int64 {
        try await run("delete", collection) { client in
            try self.withCollection(client, collection) { handle in
                try withReply { reply in
                    var error = bson_error_t()
                    let succeeded = filter.withBSON { mongoc_collection_delete_many(handle, $0, nil, reply, &error) }
                    guard succeeded else { throw MongoError(error) }
                    return BSONDocument.fields(of: reply)["deletedCount"]?.int64Value ?? 0
                }
            }
        }
    }

    /// An index to create at start: `keys` in order, e.g. `["available": .int32(1)]`.
    public struct Index: Sendable {
        public var name: String
        public var keys: BSONFields
        public var unique: Bool

        public init(name: String, keys: BSONFields, unique: Bool = false) {
            self.name = name
            self.keys = keys
            self.unique = unique
        }
    }

    /// Creates the indexes that do not exist yet; existing ones with the same definition are left alone.
    public func createIndexes(_ indexes: [Index], on collection: String) async throws(ShippyError) {
        let specifications: [BSONValue] = indexes.map { index in
            .document(["key": .document(index.keys), "name": .string(index.name), "unique": .bool(index.unique)])
        }
        let database = self.database
        try await run("createIndexes", collection) { client in
            try command(
                client,
                ["createIndexes": .string(collection), "indexes": .array(specifications)],
                database: database
            )
        }
    }

    // MARK: Blocking plumbing

    /// Runs `body` on the thread pool with a client popped from the pool, in a client span when traced
    /// (`find consignments`); maps driver errors to ours. Counts the calls that wait for a thread
    /// (`mongo_pool_queue_depth`) and how long they wait (`mongo_pool_wait_seconds`).
    private func run<T: Sendable>(
        _ operation: String,
        _ collection: String?,
        _ body: @escaping @Sendable (OpaquePointer) throws -> T
    ) async throws(ShippyError) -> T {
        try await traced(
            Self.describe(operation, collection),
            attributes: [
                OTelAttribute.db.system.name: "mongodb", OTelAttribute.db.operation.name: operation,
                OTelAttribute.db.namespace: database, OTelAttribute.db.collection.name: collection ?? "",
            ]
        ) { () async throws(ShippyError) in
            try await runOnPool(operation, collection, body)
        }
    }

    /// `find consignments`, or `ping` for a command on no collection.
    private static func describe(_ operation: String, _ collection: String?) -> String {
        collection.map { "\(operation) \($0)" } ?? operation
    }

    private func runOnPool<T: Sendable>(
        _ operation: String,
        _ collection: String?,
        _ body: @escaping @Sendable (OpaquePointer) throws -> T
    ) async throws(ShippyError) -> T {
        let submitted = ContinuousClock.now
        let deadline = CallDeadline.current
        let depth = waiting.wrappingAdd(1, ordering: .relaxed).newValue
        guard depth <= Self.maximumQueue else {
            waiting.wrappingSubtract(1, ordering: .relaxed)
            throw .unavailable("too many MongoDB operations are waiting; retry in a moment")
        }
        queue.record(depth)
        do {
            return try await threads.runIfActive {
                self.queueWait.recordNanoseconds((ContinuousClock.now - submitted).nanoseconds)
                self.queue.record(self.waiting.wrappingSubtract(1, ordering: .relaxed).newValue)
                // Its caller has stopped waiting: the operation is dropped, not done for no one.
                if let deadline, ContinuousClock.now >= deadline { throw DroppedOperation() }
                let client = mongoc_client_pool_pop(self.pool)!
                defer { mongoc_client_pool_push(self.pool, client) }
                return try body(client)
            }
        } catch let error as MongoError {
            logger.warning(
                "MongoDB operation failed",
                metadata: [
                    "operation": "\(Self.describe(operation, collection))", "server": "\(redactedURL)",
                    "domain": "\(error.domain)", "code": "\(error.code)", "error": "\(error.message)",
                ]
            )
            throw error.shippyError
        } catch is DroppedOperation {
            throw ShippyError(
                .deadlineExceeded, "the call's deadline passed while its MongoDB operation waited; nothing was done")
        } catch {
            // The thread pool is shut down: the service is stopping.
            throw .unavailable("MongoDB client is shut down")
        }
    }

    private struct DroppedOperation: Error {}

    private func withCollection<T>(
        _ client: OpaquePointer,
        _ name: String,
        _ body: (OpaquePointer) throws -> T
    ) throws -> T {
        let collection = mongoc_client_get_collection(client, database, name)!
        defer { mongoc_collection_destroy(collection) }
        return try body(collection)
    }
}

/// Runs `body` with storage for a reply that libmongoc initialises, and destroys the reply afterwards.
/// (`bson_t` is 128-byte aligned, so Swift cannot allocate one on the stack; the shim tells its size.)
private func withReply<T>(_ body: (OpaquePointer) throws -> T) rethrows -> T {
    let raw = UnsafeMutableRawPointer.allocate(byteCount: shippy_bson_size(), alignment: shippy_bson_alignment())
    let reply = OpaquePointer(raw)
    bson_init(reply)
    defer {
        bson_destroy(reply)
        raw.deallocate()
    }
    return try body(reply)
}

/// Runs a command on `database` (default `admin`) and throws its error.
private func command(_ client: OpaquePointer, _ command: BSONFields, database: String = "admin") throws {
    var error = bson_error_t()
    let succeeded = command.withBSON { mongoc_client_command_simple(client, database, $0, nil, nil, &error) }
    guard succeeded else { throw MongoError(error) }
}

/// A libmongoc `bson_error_t`, kept for the log; clients only ever see its `shippyError`.
struct MongoError: Error {
    var domain: UInt32
    var code: UInt32
    var message: String

    init(_ error: bson_error_t) {
        domain = error.domain
        code = error.code
        message = withUnsafeBytes(of: error.message) { bytes in
            String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    /// What a client may learn of this failure.
    var shippyError: ShippyError {
        if code == MONGOC_ERROR_DUPLICATE_KEY.rawValue {
            return .alreadyExists("a document with this key already exists")
        }
        switch mongoc_error_domain_t(rawValue: domain) {
        case MONGOC_ERROR_SERVER_SELECTION, MONGOC_ERROR_STREAM, MONGOC_ERROR_CLIENT:
            return .unavailable("MongoDB is unavailable; try again shortly")
        default:
            return ShippyError(.internal, "the database failed to complete the request")
        }
    }
}
