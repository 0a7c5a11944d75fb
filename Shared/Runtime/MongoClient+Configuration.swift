import Logging
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
