import ArgumentParser
import Logging
import ServiceLifecycle
import ShippyConfiguration
import ShippyRuntime

/// The entry of `user-service`, for its executable and for `shippy`: nil runs it with the process's arguments.
public func userServiceMain(_ arguments: [String]? = nil) async { await UserServiceCommand.main(arguments) }

/// `user-service`: the gRPC service `user.UserService` over PostgreSQL.
struct UserServiceCommand: AsyncParsableCommand, ServiceIdentity {
    static let name = "user-service"
    static let defaultPort = 50053
    static let defaultMetricsPort = 9053
    static let settings =
        ServerSettings.all(defaultPort: defaultPort, defaultMetricsPort: defaultMetricsPort) + TokenSettings.all
        + UserServiceConfiguration.settings

    static let configuration = serviceCommand(
        abstract: "Signs users up, logs them in with JWTs and validates tokens (gRPC user.UserService).",
        extra: [GrantAdmin.self, RevokeAdmin.self])

    static func services(
        _ settings: Settings, server: ServerConfiguration, logger: Logger
    ) async throws
        -> [(name: String, service: any Service)]
    {
        let configuration = try UserServiceConfiguration(settings, server: server)
        return try await UserServiceApp.build(configuration: configuration, logger: logger).services
    }
}
