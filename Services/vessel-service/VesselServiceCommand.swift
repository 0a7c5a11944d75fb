import ArgumentParser
import Logging
import ShippyConfiguration
import ShippyMongo
import ShippyRuntime

/// `vessel-service`: the gRPC service `vessel.VesselService` over MongoDB.
@main
struct VesselServiceCommand: AsyncParsableCommand, ServiceIdentity {
    static let name = "vessel-service"
    static let defaultPort = 50052

    static let configuration = CommandConfiguration(
        commandName: name,
        abstract: "Finds and books vessels for consignments, registers new ones (gRPC vessel.VesselService).",
        discussion: "Every flag overrides the environment variable named in its help. Exit status: 0 after a "
            + "graceful shutdown, 1 on a bad configuration or a failure at start, 64 on bad usage.",
        subcommands: [Serve.self, HealthcheckCommand<VesselServiceCommand>.self],
        defaultSubcommand: Serve.self
    )
}

/// `vessel-service [serve]`: reads the configuration, then runs until SIGTERM or SIGINT.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the service (the default).")

    @OptionGroup var server: ServerOptions
    @OptionGroup var mongo: MongoOptions
    @OptionGroup var tokens: TokenOptions

    @Option(help: "Seconds a reservation holds its room unless confirmed (env RESERVATION_LIFETIME, default 60).")
    var reservationLifetime: String?

    @Option(help: "Seconds between sweeps that release expired reservations (env SWEEP_INTERVAL, default 5).")
    var sweepInterval: String?

    func run() async throws {
        let reader = ConfigurationReader()
        let configuration = VesselServiceConfiguration(
            server: try server.resolve(defaultPort: VesselServiceCommand.defaultPort, reader),
            mongo: try mongo.resolve(reader),
            tokens: try tokens.resolve(reader),
            bookings: BookingConfiguration(
                reservationLifetime: try reader.seconds(
                    "RESERVATION_LIFETIME", flag: ("reservation-lifetime", reservationLifetime), default: .seconds(60),
                    in: 1...86_400),
                sweepInterval: try reader.seconds(
                    "SWEEP_INTERVAL", flag: ("sweep-interval", sweepInterval), default: .seconds(5), in: 0.1...3_600)
            )
        )
        try await ServiceRunner.run(VesselServiceCommand.name, configuration: configuration.server) { logger in
            try VesselServiceApp.build(configuration: configuration, logger: logger).services
        }
    }
}
