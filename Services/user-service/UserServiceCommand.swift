import ArgumentParser
import ShippyConfiguration
import ShippyRuntime

/// `user-service`: the gRPC service `user.UserService` over PostgreSQL.
@main
struct UserServiceCommand: AsyncParsableCommand, ServiceIdentity {
    static let name = "user-service"
    static let defaultPort = 50053
    static let defaultMetricsPort = 9053
    static let settings =
        ServerSettings.all(defaultPort: defaultPort, defaultMetricsPort: defaultMetricsPort) + TokenSettings.all
        + UserServiceConfiguration.settings

    static let configuration = CommandConfiguration(
        commandName: name,
        abstract: "Signs users up, logs them in with JWTs and validates tokens (gRPC user.UserService).",
        discussion: settingsHelp,
        subcommands: [Serve.self, HealthcheckCommand<UserServiceCommand>.self, GrantAdmin.self, RevokeAdmin.self],
        defaultSubcommand: Serve.self
    )
}

/// `user-service [serve]`: reads the configuration, then runs until SIGTERM or SIGINT.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the service (the default).", discussion: UserServiceCommand.settingsHelp)

    @OptionGroup var flags: SettingFlags

    func validate() throws { try flags.check(UserServiceCommand.settings) }

    func run() async throws {
        try await ServiceRunner.serve(UserServiceCommand.self, flags: flags) { settings, server, logger in
            let configuration = try UserServiceConfiguration(settings, server: server)
            return try await UserServiceApp.build(configuration: configuration, logger: logger).services
        }
    }
}
