import Logging
import ShippyConfiguration
import ShippyStorage

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
            throw MongoSettings.url.error(error.message)
        }
    }
}

extension Dependency {
    /// MongoDB as a dependency: ping, then `prepare` (indexes, migrations, seeds); probed by a ping; the client
    /// closes at shutdown.
    public static func mongoDB(
        _ client: MongoClient, prepare: @escaping @Sendable () async throws -> Void
    ) -> Dependency {
        Dependency(
            name: "MongoDB at \(client.redactedURL)",
            connect: {
                try await client.ping()
                try await prepare()
            },
            close: { await client.shutdown() },
            probe: { try await client.ping() }
        )
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

extension MongoConfiguration {
    public init(_ settings: Settings) throws(ConfigurationError) {
        self.init(
            url: try settings.value(MongoSettings.url),
            database: try settings.value(MongoSettings.database),
            threads: try settings.value(MongoSettings.threads),
            timeout: try settings.value(MongoSettings.timeout)
        )
    }
}

/// The settings of services that use MongoDB.
public enum MongoSettings {
    public static let url = Setting.text(
        "mongo.url", default: "mongodb://127.0.0.1:27017", secret: true,
        "MongoDB connection string; may carry a password, so it is secret (no flag, never logged).")
    public static let database = Setting.text("mongo.database", default: "shippy", "MongoDB database name.")
    public static let threads = Setting.integer(
        "mongo.threads", default: 4, in: 1...256, "Blocking MongoDB calls that may run at once.")
    public static let timeout = Setting.seconds(
        "mongo.timeout", default: .seconds(5), in: 0.1...300,
        "Seconds one MongoDB operation may take before it fails as unavailable.")

    public static let all: [any SettingDescription] = [url, database, threads, timeout]
}
