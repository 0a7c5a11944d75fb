import ArgumentParser
import ShippyConfiguration
import ShippyMongo
import ShippyRuntime

/// `vessel-service`: the gRPC service `vessel.VesselService` over MongoDB.
@main
struct VesselServiceCommand: AsyncParsableCommand, ServiceIdentity {
    static let name = "vessel-service"
    static let defaultPort = 50052
    static let defaultMetricsPort = 9052
    static let settings =
        ServerSettings.all(defaultPort: defaultPort, defaultMetricsPort: defaultMetricsPort) + MongoSettings.all
        + TokenSettings.all
        + BookingConfiguration.settings

    static let configuration = CommandConfiguration(
        commandName: name,
        abstract: "Finds and books vessels for consignments, registers new ones (gRPC vessel.VesselService).",
        discussion: settingsHelp,
        subcommands: [Serve.self, HealthcheckCommand<VesselServiceCommand>.self],
        defaultSubcommand: Serve.self
    )
}

/// `vessel-service [serve]`: reads the configuration, then runs until SIGTERM or SIGINT.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the service (the default).", discussion: VesselServiceCommand.settingsHelp)

    @OptionGroup var flags: SettingFlags

    func validate() throws { try flags.check(VesselServiceCommand.settings) }

    func run() async throws {
        try await ServiceRunner.serve(VesselServiceCommand.self, flags: flags) { settings, server, logger in
            let configuration = try VesselServiceConfiguration(settings, server: server)
            return try VesselServiceApp.build(configuration: configuration, logger: logger).services
        }
    }
}
