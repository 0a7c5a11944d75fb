import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import ServiceLifecycle
import ShippyConfiguration
import ShippyContracts
import ShippyDiscovery
import ShippyDomain
import ShippyMessaging
import ShippyMongo
import ShippyRuntime
import ShippyStorage

/// The consignment service's configuration, resolved from flags and environment.
struct ConsignmentServiceConfiguration: Sendable {
    var server: ServerConfiguration
    var mongo: MongoConfiguration
    var tokens: TokenConfiguration
    /// `host:port` or `dns:///name:port` of vessel-service.
    var vesselServiceAddress: String
    /// Deadline of each call to vessel-service; follows the configuration file.
    var vesselTimeout: LiveSetting<Duration>
    /// vessel-service's replicas in this process's zone, tried first.
    var vesselZoneAddress: String?
    /// A canary version of vessel-service, and the percentage of calls it gets (follows the configuration file).
    var vesselCanaryAddress: String?
    var vesselCanaryPercent: LiveSetting<Int>
    /// How long a booking attempt may be under way before recovery finishes it.
    var bookingRecoveryAfter: Duration
    /// The room one user's open consignments may hold (follows the configuration file).
    var quotaContainers: LiveSetting<Int>
    var quotaWeight: LiveSetting<Int>
    /// Where the consignment events go (`consignment.booked`, `consignment.cancelled`).
    var nats: NATSEndpoint

    static let vesselTimeout = Setting.seconds(
        "vessel.timeout", default: .seconds(5), in: 0.1...300, reloads: true,
        "Seconds each call to vessel-service may take.")
    static let vesselZoneAddress = Setting<String?>.optionalText(
        "vessel.zone.address",
        "vessel-service replicas in this zone (dns:///name:port), tried first; the others take calls when none is ready."
    )
    static let vesselCanaryAddress = Setting<String?>.optionalText(
        "vessel.canary.address", "A canary vessel-service (dns:///name:port) that gets vessel.canary.percent of calls.")
    static let vesselCanaryPercent = Setting.integer(
        "vessel.canary.percent", default: 0, in: 0...100, reloads: true,
        "Percentage of calls to vessel-service sent to vessel.canary.address.")
    static let bookingRecoveryAfter = Setting.seconds(
        "booking.recovery.after", default: .seconds(30), in: 1...3600,
        "Seconds a booking may be under way before recovery (every 5 s, in every replica) finishes it from what is stored."
    )
    static let quotaContainers = Setting.integer(
        "quota.containers", default: ConsignmentQuota.standard.limit.containers, in: 1...1_000_000_000, reloads: true,
        "Containers one user's open consignments may hold at once; a booking beyond it is refused.")
    static let quotaWeight = Setting.integer(
        "quota.weight", default: ConsignmentQuota.standard.limit.weight, in: 1...1_000_000_000_000, reloads: true,
        "Kilograms one user's open consignments may hold at once; a booking beyond it is refused.")
    static let settings: [any SettingDescription] = [
        SharedSettings.vesselServiceAddress, vesselTimeout, vesselZoneAddress, vesselCanaryAddress, vesselCanaryPercent,
        bookingRecoveryAfter, quotaContainers, quotaWeight, SharedSettings.natsURL, SharedSettings.natsAuthorities,
    ]

    /// The quota as configured now.
    var quota: @Sendable () -> ConsignmentQuota {
        { [quotaContainers, quotaWeight] in
            ConsignmentQuota(containers: quotaContainers.value, weight: quotaWeight.value)
        }
    }
}

extension ConsignmentServiceConfiguration {
    init(_ settings: Settings, server: ServerConfiguration) throws(ConfigurationError) {
        self.init(
            server: server, mongo: try MongoConfiguration(settings), tokens: try TokenConfiguration(settings),
            vesselServiceAddress: try settings.value(SharedSettings.vesselServiceAddress),
            vesselTimeout: try settings.live(Self.vesselTimeout),
            vesselZoneAddress: try settings.value(Self.vesselZoneAddress),
            vesselCanaryAddress: try settings.value(Self.vesselCanaryAddress),
            vesselCanaryPercent: try settings.live(Self.vesselCanaryPercent),
            bookingRecoveryAfter: try settings.value(Self.bookingRecoveryAfter),
            quotaContainers: try settings.live(Self.quotaContainers), quotaWeight: try settings.live(Self.quotaWeight),
            nats: NATSEndpoint(
                url: try settings.value(SharedSettings.natsURL),
                authorities: try settings.value(SharedSettings.natsAuthorities)))
    }
}

extension ConsignmentServiceConfiguration {
    /// vessel-service's replicas by name, with the zone and canary routes when configured.
    func vesselTransport() throws -> ServiceTransport {
        func target(
            _ address: String?, _ setting: Setting<String?>
        ) throws(ConfigurationError) -> (any ResolvableTarget)? {
            try address.map { address throws(ConfigurationError) in
                try ServiceAddress.target(address, key: setting.displayName)
            }
        }
        let percent = vesselCanaryPercent
        return try ServiceTransport(
            main: try ServiceAddress.target(vesselServiceAddress, key: SharedSettings.vesselServiceAddress.displayName),
            zone: try target(vesselZoneAddress, Self.vesselZoneAddress),
            canary: try target(vesselCanaryAddress, Self.vesselCanaryAddress),
            canaryShare: { Double(percent.value) / 100 },
            serviceConfig: GRPCVesselBooker.serviceConfig, security: server.clientSecurity)
    }
}

/// The wiring of the consignment service, shared by `main` and the tests.
struct ConsignmentServiceApp {
    let health: HealthService
    let server: GRPCServerService
    /// Opens once every dependency is connected.
    let ready: ReadinessSignal
    /// In start order: the vessel-service client, readiness (MongoDB, token keys), the gRPC server, recovery, then
    /// the outbox's publisher (which waits for MongoDB and retries NATS for as long as it runs).
    let services: [(name: String, service: any Service)]

    /// - Throws: `ConfigurationError` for a bad MongoDB URL, vessel-service address or missing key file.
    static func build(configuration: ConsignmentServiceConfiguration, logger: Logger) throws -> ConsignmentServiceApp {
        let verifier = try PublicKeyFileVerifier(configuration.tokens)
        let mongo = try MongoClient.make(configuration.mongo, logger: logger)
        let vesselClient = GRPCClientService(transport: try configuration.vesselTransport())
        let repository = MongoConsignmentRepository(client: mongo)
        let dependencies: [Dependency] = [
            .mongoDB(mongo, prepare: { try await repository.prepare() }), .tokenKeys(verifier),
        ]
        let booker = GRPCVesselBooker(
            client: vesselClient.client, timeout: configuration.vesselTimeout)
        let booking = ConsignmentBooking(
            consignments: repository, vessels: booker, staleAfter: configuration.bookingRecoveryAfter, logger: logger,
            quota: configuration.quota)
        let app = build(
            configuration: configuration.server, booking: booking, verifier: verifier, dependencies: dependencies,
            logger: logger)
        let publisher = OutboxPublisher(
            nats: configuration.nats, stream: ConsignmentEvents.stream, outbox: repository, ready: app.ready,
            client: "consignment-service", logger: logger)
        return ConsignmentServiceApp(
            health: app.health, server: app.server, ready: app.ready,
            services: [("vessel-client", vesselClient)] + app.services + [
                ("outbox-publisher", publisher),
                ("outbox-gauges", OutboxPublisher.gauges(of: repository, logger: logger)),
            ])
    }

    /// Builds the service over any booking use case (its store and vessel booker) and verifier; tests pass
    /// in-memory ones.
    static func build(
        configuration: ServerConfiguration,
        booking: ConsignmentBooking,
        verifier: any TokenVerifying,
        dependencies: [Dependency],
        logger: Logger
    ) -> ConsignmentServiceApp {
        let assembly = ServiceAssembly(
            serving: Consignment_ShippingService.descriptor, handler: ConsignmentServiceHandler(booking: booking),
            verifier: VerifiedTokenCache(verifier), dependencies: dependencies, configuration: configuration,
            logger: logger)
        // Finishes bookings that a crash (here or in another replica) left half-done: at start, then every 5 s.
        let recovery = PeriodicWork("booking recovery", every: .seconds(5), logger: logger) {
            try await booking.recoverStalled()
        }
        return ConsignmentServiceApp(
            health: assembly.health, server: assembly.server, ready: assembly.readiness.ready,
            services: assembly.services(last: [("booking-recovery", recovery)]))
    }
}
