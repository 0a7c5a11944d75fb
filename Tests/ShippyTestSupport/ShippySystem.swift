import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import ShippyDomain
import ShippyMongo
import ShippyStorage
import Testing

/// The real services of a test, started as executables on free ports of 127.0.0.1 over the harness's real
/// servers, in a MongoDB database of their own, all verifying tokens with `keys`.
package struct ShippySystem {
    package let keys: TestKeys
    package let database: String
    /// The MongoDB-compatible server the services use: the harness's, or a test's own.
    package let mongoURL: String

    package init(mongoURL: String? = nil) throws {
        keys = try TestKeys()
        database = TestEnvironment.uniqueDatabase("system")
        self.mongoURL = try mongoURL ?? TestEnvironment.mongoURL()
    }

    /// Stores `fleet` before any vessel-service starts, so that none seeds the default fleet.
    package func storeFleet(_ fleet: [Vessel]) async throws {
        try await withMongo { client in
            let repository = MongoVesselRepository(client: client)
            try await repository.prepare()
            for vessel in fleet { try await repository.create(vessel) }
        }
    }

    /// - Parameter port: where it listens (a restarted replica takes its predecessor's); a free port when `nil`.
    package func startVessel(extra: [String: String] = [:], port: Int? = nil) throws -> ServiceProcess {
        try ServiceProcess.start(
            "vessel-service",
            environment: [
                "MONGO_URL": mongoURL, "MONGO_DATABASE": database,
                "JWT_PUBLIC_KEY_FILE": keys.publicKeyFile,
            ].merging(extra) { $1 }, port: port)
    }

    /// - Parameter port: where it listens (a restarted replica takes its predecessor's); a free port when `nil`.
    package func startConsignment(
        vessel: ServiceProcess, extra: [String: String] = [:], port: Int? = nil
    ) throws -> ServiceProcess {
        try ServiceProcess.start(
            "consignment-service",
            environment: [
                "MONGO_URL": mongoURL, "MONGO_DATABASE": database,
                "JWT_PUBLIC_KEY_FILE": keys.publicKeyFile, "VESSEL_SERVICE_ADDRESS": "127.0.0.1:\(vessel.port)",
            ].merging(try Self.harnessNATS(unless: extra)) { $1 }.merging(extra) { $1 }, port: port)
    }

    /// The harness's NATS (TLS, its authority), unless `extra` names a NATS of the test's own.
    package static func harnessNATS(unless extra: [String: String]) throws -> [String: String] {
        guard extra["NATS_URL"] == nil else { return [:] }
        return [
            "NATS_URL": try TestEnvironment.value("SHIPPY_NATS_URL"),
            "NATS_CA": try TestEnvironment.value("SHIPPY_NATS_CA"),
        ]
    }

    /// user-service signing with the test's key, so tokens it issues and tokens the test mints both verify;
    /// at the default bcrypt cost unless `extra` sets `BCRYPT_COST`.
    package func startUser(extra: [String: String] = [:]) async throws -> ServiceProcess {
        let folder = (keys.publicKeyFile as NSString).deletingLastPathComponent
        let privateKeyFile = "\(folder)/signing.pem"
        if !FileManager.default.fileExists(atPath: privateKeyFile) {
            try keys.privateKey.pemRepresentation.write(toFile: privateKeyFile, atomically: true, encoding: .utf8)
        }
        let nats = try Self.harnessNATS(unless: extra)
        return try ServiceProcess.start(
            "user-service",
            environment: [
                "POSTGRES_URL": try await PostgresTestDatabase.create(),
                "JWT_PRIVATE_KEY_FILE": privateKeyFile, "JWT_PUBLIC_KEY_FILE": "\(folder)/published.pem",
            ].merging(nats) { $1 }.merging(extra) { $1 })
    }

    /// Reads the database the services share, as the test's own MongoDB client.
    package func withMongo<T>(_ body: (MongoClient) async throws -> T) async throws -> T {
        try await withMongoClient(url: mongoURL, database: database, threads: 1, body)
    }

    /// Stops every process, whatever happened in the test.
    package static func stopAll(_ services: [ServiceProcess]) async {
        for service in services { await service.process.stop() }
    }
}
