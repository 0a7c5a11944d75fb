import ArgumentParser
import Logging
import ServiceLifecycle
import ShippyConfiguration

/// What a service's commands need to know about it.
public protocol ServiceIdentity {
    /// The executable's name, e.g. `vessel-service`.
    static var name: String { get }
    /// The port it listens on unless `PORT` or `--port` says otherwise.
    static var defaultPort: Int { get }
    /// The port of its Prometheus endpoint unless `METRICS_PORT` or `--metrics-port` says otherwise.
    static var defaultMetricsPort: Int { get }
    /// Every setting it reads, for its help and for the check of its flags.
    static var settings: [any SettingDescription] { get }
    /// Its parts, built from its settings with the process's logger, in start order: the server last, so that
    /// it stops first. Nothing connects until they run.
    /// - Throws: `ConfigurationError` for a setting that cannot be used.
    static func services(
        _ settings: Settings, server: ServerConfiguration, logger: Logger
    ) async throws
        -> [(name: String, service: any Service)]
}

extension ServiceIdentity where Self: ParsableCommand {
    /// A service's command line: `serve` (the default), its health check, then `extra` subcommands; the help lists
    /// every setting.
    public static func serviceCommand(
        abstract: String, healthcheck: any ParsableCommand.Type = HealthcheckCommand<Self>.self,
        extra: [any ParsableCommand.Type] = []
    ) -> CommandConfiguration {
        CommandConfiguration(
            commandName: name, abstract: abstract, discussion: settingsHelp,
            subcommands: [ServeCommand<Self>.self, healthcheck] + extra, defaultSubcommand: ServeCommand<Self>.self)
    }
}

/// `SERVICE [serve]`, every service's default command: reads the configuration, then runs until SIGTERM or SIGINT.
public struct ServeCommand<Identity: ServiceIdentity>: AsyncParsableCommand {
    public static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "serve", abstract: "Run the service (the default).", discussion: Identity.settingsHelp)
    }

    @OptionGroup var flags: SettingFlags

    public init() {}

    public func validate() throws { try flags.check(Identity.settings) }

    public func run() async throws {
        try await ServiceRunner.serve(Identity.self, flags: flags)
    }
}

extension ServiceIdentity {
    /// The help's list of settings, each with its flag, environment variable, file key and default.
    public static var settingsHelp: String {
        """
        Settings, each as --flag | ENVIRONMENT_VARIABLE | key in CONFIG_FILE. A flag wins over the environment, \
        which wins over the file; those marked "reloads" follow the file while the service runs.

        \(settings.map { $0.helpEntry }.joined(separator: "\n\n"))

        Traces: set OTEL_EXPORTER_OTLP_ENDPOINT (an OTLP/gRPC collector, e.g. http://127.0.0.1:4317) to send spans; \
        the other standard OTEL_* variables apply (OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER, OTEL_BSP_SCHEDULE_DELAY, …).

        Exit status: 0 after a graceful shutdown, 1 on a bad configuration or a failure at start, 64 on bad usage.
        """
    }
}

/// The settings a `serve` command takes as flags: `--vessel-timeout 2` or `--vessel-timeout=2`, for every setting
/// that is not a secret. They go to swift-configuration's command-line provider; this only checks them.
public struct SettingFlags: ParsableArguments {
    @Argument(
        parsing: .captureForPassthrough,
        help: ArgumentHelp("Settings as flags, for example --port 50052 (listed below).", valueName: "--setting value"))
    public var values: [String] = []

    public init() {}

    /// - Throws: `ValidationError` (exit 64) for a flag that names no setting, or a value without a flag.
    public func check(_ settings: [any SettingDescription]) throws {
        let flags = Set(settings.compactMap { $0.flagName })
        var awaitingValue: String?
        for argument in values {
            if let flag = awaitingValue {
                guard !argument.hasPrefix("--") else { throw ValidationError("--\(flag) needs a value") }
                awaitingValue = nil
                continue
            }
            guard argument.hasPrefix("--") else {
                throw ValidationError("unexpected argument \"\(argument)\"; settings are given as --setting value")
            }
            let name = String(argument.dropFirst(2).prefix { $0 != "=" })
            guard flags.contains(name) else {
                throw ValidationError("unknown option --\(name); see --help for the settings")
            }
            if !argument.contains("=") { awaitingValue = name }
        }
        if let flag = awaitingValue { throw ValidationError("--\(flag) needs a value") }
    }
}
