import ArgumentParser
import ShippyConfiguration
import ShippyMongo
import ShippyRuntime

/// `consignment-service`: the gRPC service `consignment.ShippingService` over MongoDB.
@main
struct ConsignmentServiceCommand: AsyncParsableCommand, ServiceIdentity {
    static let name = "consignment-service"
    static let defaultPort = 50051
    static let defaultMetricsPort = 9051
    static let settings =
        ServerSettings.all(defaultPort: defaultPort, defaultMetricsPort: defaultMetricsPort) + MongoSettings.all
        + TokenSettings.all
        + ConsignmentServiceConfiguration.settings

    static let configuration = CommandConfiguration(
        commandName: name,
        abstract: "Books consignments on vessels for authenticated users (gRPC consignment.ShippingService).",
        discussion: settingsHelp,
        subcommands: [Serve.self, HealthcheckCommand<ConsignmentServiceCommand>.self],
        defaultSubcommand: Serve.self
    )
}

/// `consignment-service [serve]`: reads the configuration, then runs until SIGTERM or SIGINT.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the service (the default).", discussion: ConsignmentServiceCommand.settingsHelp)

    @OptionGroup var flags: SettingFlags

    func validate() throws { try flags.check(ConsignmentServiceCommand.settings) }

    func run() async throws {
        try await ServiceRunner.serve(ConsignmentServiceCommand.self, flags: flags) { settings, server, logger in
            let configuration = try ConsignmentServiceConfiguration(settings, server: server)
            return try ConsignmentServiceApp.build(configuration: configuration, logger: logger).services
        }
    }
}
