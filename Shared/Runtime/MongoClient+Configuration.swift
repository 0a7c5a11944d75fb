import Logging
import ShippyStorage

extension MongoClient {
    /// The process's MongoDB client from its configuration; nothing connects yet.
    /// - Throws: `ConfigurationError` naming `MONGO_URL` when the URL cannot be used.
    public static func make(_ configuration: MongoConfiguration, logger: Logger) throws(ConfigurationError) -> MongoClient {
        do {
            return try MongoClient(
                url: configuration.url, database: configuration.database, threads: configuration.threads,
                timeout: configuration.timeout, logger: logger)
        } catch {
            throw ConfigurationError(key: "MONGO_URL", flag: "mongo-url", problem: error.message)
        }
    }
}
