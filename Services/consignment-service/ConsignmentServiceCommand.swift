import ArgumentParser
import Logging
import ShippyConfiguration
import ShippyMongo
import ShippyRuntime

/// `consignment-service`: the gRPC service `consignment.ShippingService` over MongoDB.
@main
struct ConsignmentServiceCommand: AsyncParsableCommand, ServiceIdentity {
    static let name = "consignment-service"
    static let defaultPort = 50051

    static let configuration = CommandConfiguration(
        commandName: name,
        abstract: "Books consignments on vessels for authenticated users (gRPC consignment.ShippingService).",
        discussion: "Every flag overrides the environment variable named in its help. Exit status: 0 after a "
            + "graceful shutdown, 1 on a bad configuration or a failure at start, 64 on bad usage.",
        subcommands: [Serve.self, HealthcheckCommand<ConsignmentServiceCommand>.self],
        defaultSubcommand: Serve.self
    )
}

/// `consignment-service [serve]`: reads the configuration, then runs until SIGTERM or SIGINT.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the service (the default).")

    @OptionGroup var server: ServerOptions
    @OptionGroup var mongo: MongoOptions
    @OptionGroup var tokens: TokenOptions

    @Option(
        help:
            "vessel-service address, host:port or dns:///name:port (env VESSEL_SERVICE_ADDRESS, default 127.0.0.1:50052)."
    )
    var vesselServiceAddress: String?

    @Option(help: "Seconds each call to vessel-service may take (env VESSEL_TIMEOUT, default 5).")
    var vesselTimeout: String?

    func run() async throws {
        let reader = ConfigurationReader()
        let configuration = ConsignmentServiceConfiguration(
            server: try server.resolve(defaultPort: ConsignmentServiceCommand.defaultPort, reader),
            mongo: try mongo.resolve(reader),
            tokens: try tokens.resolve(reader),
            vesselServiceAddress: try reader.string(
                "VESSEL_SERVICE_ADDRESS", flag: ("vessel-service-address", vesselServiceAddress),
                default: "127.0.0.1:50052"),
            vesselTimeout: try reader.seconds(
                "VESSEL_TIMEOUT", flag: ("vessel-timeout", vesselTimeout), default: .seconds(5), in: 0.1...300)
        )
        try await ServiceRunner.run(ConsignmentServiceCommand.name, configuration: configuration.server) { logger in
            try ConsignmentServiceApp.build(configuration: configuration, logger: logger).services
        }
    }
}
