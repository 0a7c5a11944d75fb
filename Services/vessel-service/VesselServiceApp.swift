import GRPCCore
import Logging
import ServiceLifecycle
import ShippyContracts
import ShippyDomain
import ShippyRuntime
import ShippyStorage

/// The vessel service's configuration, resolved from flags and environment.
struct VesselServiceConfiguration: Sendable {
    var server: ServerConfiguration
    var mongo: MongoConfiguration
}

/// The wiring of the vessel service, shared by `main` and the tests.
struct VesselServiceApp {
    let health: HealthService
    let server: GRPCServerService
    /// In start order: the MongoDB readiness first, the gRPC server last (so it stops first).
    let services: [(name: String, service: any Service)]

    /// Builds the MongoDB-backed service. Nothing connects until the services run.
    /// - Throws: `ConfigurationError` when the MongoDB URL cannot be used.
    static func build(configuration: VesselServiceConfiguration, logger: Logger) throws -> VesselServiceApp {
        let mongo = try MongoClient.make(configuration.mongo, logger: logger)
        let repository = MongoVesselRepository(client: mongo)
        let database = Dependency(
            name: "MongoDB at \(mongo.redactedURL)",
            connect: {
                try await mongo.ping()
                try await repository.prepare()
                let seeded = try await repository.seedIfEmpty(Vessel.defaultFleet)
                if seeded > 0 { logger.info("seeded the default fleet", metadata: ["vessels": "\(seeded)"]) }
            },
            close: { await mongo.shutdown() }
        )
        return build(configuration: configuration.server, repository: repository, dependencies: [database], logger: logger)
    }

    /// Builds the service over any repository; tests pass an in-memory one and no dependencies.
    static func build(
        configuration: ServerConfiguration,
        repository: any VesselRepository,
        dependencies: [Dependency],
        logger: Logger
    ) -> VesselServiceApp {
        let health = HealthService(services: [Vessel_VesselService.descriptor.fullyQualifiedService])
        let server = GRPCServerService(
            host: configuration.host,
            port: configuration.port,
            services: [VesselServiceHandler(repository: repository, logger: logger)],
            health: health,
            logger: logger
        )
        let readiness = ReadinessService(
            dependencies: dependencies,
            retry: StartupRetry(deadline: configuration.startupTimeout),
            health: health,
            logger: logger
        )
        return VesselServiceApp(
            health: health,
            server: server,
            services: [("readiness", readiness), ("grpc-server", server)]
        )
    }
}
