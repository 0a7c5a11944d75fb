import ArgumentParser
import Logging
import ServiceLifecycle
import ShippyConfiguration
import ShippyMongo
import ShippyRuntime

/// The entry of `vessel-service`, for its executable and for `shippy`: nil runs it with the process's arguments.
public func vesselServiceMain(_ arguments: [String]? = nil) async { await VesselServiceCommand.main(arguments) }

/// `vessel-service`: the gRPC service `vessel.VesselService` over MongoDB.
struct VesselServiceCommand: AsyncParsableCommand, ServiceIdentity {
    static let name = "vessel-service"
    static let defaultPort = 50052
    static let defaultMetricsPort = 9052
    static let settings =
        ServerSettings.all(defaultPort: defaultPort, defaultMetricsPort: defaultMetricsPort) + MongoSettings.all
        + TokenSettings.all
        + BookingConfiguration.settings

    static let configuration = serviceCommand(
        abstract: "Finds and books vessels for consignments, registers new ones (gRPC vessel.VesselService).")

    static func services(
        _ settings: Settings, server: ServerConfiguration, logger: Logger
    ) async throws
        -> [(name: String, service: any Service)]
    {
        let configuration = try VesselServiceConfiguration(settings, server: server)
        return try VesselServiceApp.build(configuration: configuration, logger: logger).services
    }
}
