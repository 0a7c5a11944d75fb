import GRPCCore
import Logging
import ServiceLifecycle
import ShippyConfiguration
import ShippyContracts
import ShippyDomain
import ShippyMongo
import ShippyRuntime
import ShippyStorage

/// The vessel service's configuration, from its settings.
struct VesselServiceConfiguration: Sendable {
    var server: ServerConfiguration
    var mongo: MongoConfiguration
    var tokens: TokenConfiguration
    var bookings: BookingConfiguration
}

extension VesselServiceConfiguration {
    init(_ settings: Settings, server: ServerConfiguration) throws(ConfigurationError) {
        self.init(
            server: server, mongo: try MongoConfiguration(settings), tokens: try TokenConfiguration(settings),
            bookings: BookingConfiguration(
                reservationLifetime: try settings.value(BookingConfiguration.reservationLifetime),
                sweepInterval: try settings.value(BookingConfiguration.sweepInterval)))
    }
}

/// How long reservations hold their room, and how often expired ones are swept.
struct BookingConfiguration: Sendable {
    var reservationLifetime: Duration = .seconds(60)
    var sweepInterval: Duration = .seconds(5)

    static let reservationLifetime = Setting.seconds(
        "reservation.lifetime", default: .seconds(60), in: 1...86_400,
        "Seconds a reservation holds its room unless confirmed.")
    static let sweepInterval = Setting.seconds(
        "sweep.interval", default: .seconds(5), in: 0.1...3_600,
        "Seconds between sweeps that release expired reservations.")
    static let settings: [any SettingDescription] = [reservationLifetime, sweepInterval]
}

/// The wiring of the vessel service, shared by `main` and the tests.
struct VesselServiceApp {
    let health: HealthService
    let server: GRPCServerService
    /// In start order: readiness (MongoDB, token keys), the sweep, the gRPC server last (so it stops first).
    let services: [(name: String, service: any Service)]

    /// Builds the MongoDB-backed service. Nothing connects until the services run.
    /// - Throws: `ConfigurationError` when the MongoDB URL cannot be used or the key file is not set.
    static func build(configuration: VesselServiceConfiguration, logger: Logger) throws -> VesselServiceApp {
        let verifier = try PublicKeyFileVerifier(configuration.tokens)
        let mongo = try MongoClient.make(configuration.mongo, logger: logger)
        let repository = MongoVesselRepository(client: mongo)
        let dependencies: [Dependency] = [
            .mongoDB(mongo) {
                try await repository.prepare()
                let seeded = try await repository.seedIfEmpty(Vessel.defaultFleet)
                if seeded > 0 { logger.info("seeded the default fleet", metadata: ["vessels": "\(seeded)"]) }
            },
            .tokenKeys(verifier),
        ]
        return build(
            configuration: configuration.server, bookings: configuration.bookings, repository: repository,
            verifier: verifier, dependencies: dependencies, logger: logger)
    }

    /// Builds the service over any repository and verifier; tests pass in-memory ones and no dependencies.
    static func build(
        configuration: ServerConfiguration,
        bookings: BookingConfiguration = BookingConfiguration(),
        repository: any VesselRepository,
        verifier: any TokenVerifying,
        dependencies: [Dependency],
        logger: Logger
    ) -> VesselServiceApp {
        let assembly = ServiceAssembly(
            serving: Vessel_VesselService.descriptor,
            handler: VesselServiceHandler(
                repository: repository, reservationLifetime: bookings.reservationLifetime, logger: logger),
            verifier: VerifiedTokenCache(verifier), publicMethods: VesselServiceHandler.publicMethods,
            restricted: VesselServiceHandler.restricted, dependencies: dependencies, configuration: configuration,
            logger: logger)
        let sweeper = BookingSweeper.service(repository: repository, interval: bookings.sweepInterval, logger: logger)
        return VesselServiceApp(
            health: assembly.health, server: assembly.server,
            services: assembly.services([
                ("booking-sweeper", sweeper), ("fleet-gauges", FleetGauges.refresher(repository, logger: logger)),
            ]))
    }
}
