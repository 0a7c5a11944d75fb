import ArgumentParser
import Logging
import ShippyRuntime

/// `vessel-service`: the gRPC service `vessel.VesselService` over MongoDB.
@main
struct VesselServiceCommand: AsyncParsableCommand, ServiceIdentity {
    static let name = "vessel-service"
    static let defaultPort = 50052

    static let configuration = CommandConfiguration(
        commandName: name,
        abstract: "Finds vessels for consignments and registers new ones (gRPC vessel.VesselService).",
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

    func run() async throws {
        let reader = ConfigurationReader()
        let configuration = VesselServiceConfiguration(
            server: try server.resolve(defaultPort: VesselServiceCommand.defaultPort, reader),
            mongo: try mongo.resolve(reader)
        )
        try await ServiceRunner.run(VesselServiceCommand.name, configuration: configuration.server) { logger in
            try VesselServiceApp.build(configuration: configuration, logger: logger).services
        }
    }
}
