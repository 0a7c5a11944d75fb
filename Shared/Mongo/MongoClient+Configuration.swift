import ArgumentParser
import Logging
import ShippyConfiguration
import ShippyRuntime

extension MongoClient {
    /// The process's MongoDB client from its configuration; nothing connects yet.
    /// - Throws: `ConfigurationError` naming `MONGO_URL` when the URL cannot be used.
    public static func make(
        _ configuration: MongoConfiguration, logger: Logger
    ) throws(ConfigurationError) -> MongoClient {
        do {
            return try MongoClient(
                url: configuration.url, database: configuration.database, threads: configuration.threads,
                timeout: configuration.timeout, logger: logger)
        } catch {
            throw ConfigurationError(key: "MONGO_URL", flag: "mongo-url", problem: error.message)
        }
    }
}

extension Dependency {
    /// MongoDB as a dependency: ping, then `prepare` (indexes, migrations, seeds); the client closes at shutdown.
    public static func mongoDB(
        _ client: MongoClient, prepare: @escaping @Sendable () async throws -> Void
    ) -> Dependency {
        Dependency(
            name: "MongoDB at \(client.redactedURL)",
            connect: {
                try await client.ping()
                try await prepare()
            },
            close: { await client.shutdown() }
        )
    }

    /// The token public key file as a dependency: read until it exists and holds a key.
    public static func tokenKeys(_ verifier: PublicKeyFileVerifier) -> Dependency {
        Dependency(name: "token public key at \(verifier.path)", connect: { try await verifier.load() })
    }
}

/// Where a service keeps its MongoDB data.
public struct MongoConfiguration: Sendable {
    /// A `mongodb://` connection string; may carry credentials, so it is only ever logged redacted.
    public var url: String
    public var database: String
    /// Blocking driver calls that may run at once (the bounded thread pool and the client pool).
    public var threads: Int
    /// How long one MongoDB operation may take before it is `unavailable` (server- and client-side).
    public var timeout: Duration

    public init(url: String, database: String = "shippy", threads: Int = 4, timeout: Duration = .seconds(5)) {
        self.url = url
        self.database = database
        self.threads = threads
        self.timeout = timeout
    }
}

/// The command-line flags of services that use MongoDB.
public struct MongoOptions: ParsableArguments {
    @Option(help: "MongoDB connection string (env MONGO_URL, default mongodb://127.0.0.1:27017).")
    public var mongoURL: String?

    @Option(help: "MongoDB database name (env MONGO_DATABASE, default shippy).")
    public var mongoDatabase: String?

    @Option(help: "Blocking MongoDB calls that may run at once (env MONGO_THREADS, default 4).")
    public var mongoThreads: String?

    @Option(
        help: "Seconds one MongoDB operation may take before it fails as unavailable (env MONGO_TIMEOUT, default 5).")
    public var mongoTimeout: String?

    public init() {}

    public func resolve(_ reader: ConfigurationReader) throws(ConfigurationError) -> MongoConfiguration {
        MongoConfiguration(
            url: try reader.string("MONGO_URL", flag: ("mongo-url", mongoURL), default: "mongodb://127.0.0.1:27017"),
            database: try reader.string("MONGO_DATABASE", flag: ("mongo-database", mongoDatabase), default: "shippy"),
            threads: try reader.integer(
                "MONGO_THREADS", flag: ("mongo-threads", mongoThreads), default: 4, in: 1...256),
            timeout: try reader.seconds(
                "MONGO_TIMEOUT", flag: ("mongo-timeout", mongoTimeout), default: .seconds(5), in: 0.1...300)
        )
    }
}
