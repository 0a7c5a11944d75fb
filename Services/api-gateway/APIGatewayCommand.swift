import ArgumentParser
import ShippyConfiguration
import ShippyRuntime

/// `api-gateway`: Shippy over HTTP and JSON (the OpenAPI document at /openapi.yaml) and the web app at /,
/// calling user-, consignment- and vessel-service over gRPC.
@main
struct APIGatewayCommand: AsyncParsableCommand, ServiceIdentity {
    static let name = "api-gateway"
    static let defaultPort = 8080
    static let defaultMetricsPort = 9055
    static let settings =
        ServerSettings.all(defaultPort: defaultPort, defaultMetricsPort: defaultMetricsPort)
        + GatewayConfiguration.settings

    static let configuration = CommandConfiguration(
        commandName: name,
        abstract: "Shippy's HTTP/JSON API and web app, in front of the gRPC services.",
        discussion: settingsHelp,
        subcommands: [Serve.self, HTTPHealthcheckCommand.self],
        defaultSubcommand: Serve.self
    )
}

/// `api-gateway [serve]`: reads the configuration, then runs until SIGTERM or SIGINT.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the gateway (the default).", discussion: APIGatewayCommand.settingsHelp)

    @OptionGroup var flags: SettingFlags

    func validate() throws { try flags.check(APIGatewayCommand.settings) }

    func run() async throws {
        try await ServiceRunner.serve(APIGatewayCommand.self, flags: flags) { settings, server, logger in
            let configuration = try GatewayConfiguration(settings, server: server)
            return try GatewayApp.build(configuration: configuration, logger: logger).services
        }
    }
}
