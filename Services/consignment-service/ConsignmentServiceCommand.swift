import ArgumentParser
import Logging
import ServiceLifecycle
import ShippyConfiguration
import ShippyMongo
import ShippyRuntime

/// The entry of `consignment-service`, for its executable and for `shippy`: nil runs it with the process's arguments.
public func consignmentServiceMain(_ arguments: [String]? = nil) async {
    await ConsignmentServiceCommand.main(arguments)
}

/// `consignment-service`: the gRPC service `consignment.ShippingService` over MongoDB.
struct ConsignmentServiceCommand: AsyncParsableCommand, ServiceIdentity {
    static let name = "consignment-service"
    static let defaultPort = 50051
    static let defaultMetricsPort = 9051
    static let settings =
        ServerSettings.all(defaultPort: defaultPort, defaultMetricsPort: defaultMetricsPort) + MongoSettings.all
        + TokenSettings.all
        + ConsignmentServiceConfiguration.settings

    static let configuration = serviceCommand(
        abstract: "Books consignments on vessels for authenticated users (gRPC consignment.ShippingService).")

    static func services(
        _ settings: Settings, server: ServerConfiguration, logger: Logger
    ) async throws
        -> [(name: String, service: any Service)]
    {
        let configuration = try ConsignmentServiceConfiguration(settings, server: server)
        return try ConsignmentServiceApp.build(configuration: configuration, logger: logger).services
    }
}
