import ArgumentParser
import Logging
import ServiceLifecycle
import ShippyConfiguration
import ShippyRuntime

/// The entry of `api-gateway`, for its executable and for `shippy`: nil runs it with the process's arguments.
public func apiGatewayMain(_ arguments: [String]? = nil) async { await APIGatewayCommand.main(arguments) }

/// `api-gateway`: Shippy over HTTP and JSON (the OpenAPI document at /openapi.yaml) and the web app at /,
/// calling user-, consignment- and vessel-service over gRPC.
struct APIGatewayCommand: AsyncParsableCommand, ServiceIdentity {
    static let name = "api-gateway"
    static let defaultPort = 8080
    static let defaultMetricsPort = 9055
    static let settings =
        ServerSettings.all(defaultPort: defaultPort, defaultMetricsPort: defaultMetricsPort)
        + GatewayConfiguration.settings

    static let configuration = serviceCommand(
        abstract: "Shippy's HTTP/JSON API and web app, in front of the gRPC services.",
        healthcheck: HTTPHealthcheckCommand.self)

    static func services(
        _ settings: Settings, server: ServerConfiguration, logger: Logger
    ) async throws
        -> [(name: String, service: any Service)]
    {
        let configuration = try GatewayConfiguration(settings, server: server)
        return try GatewayApp.build(configuration: configuration, logger: logger).services
    }
}
