import GRPCInProcessTransport
import GRPCNIOTransportHTTP2
import Logging
import ShippyConfiguration
import ShippyDiscovery
import ShippyTelemetry

/// What every service needs to run: where to listen, how to log, how long to wait at start and at stop.
public struct ServerConfiguration: Sendable {
    public enum LogFormat: String, Sendable, CaseIterable {
        case text, json
    }

    public var host: String
    public var port: Int
    /// The port of the Prometheus endpoint `/metrics` (HTTP, on `host`); 0: none.
    public var metricsPort: Int
    /// Follows the configuration file while the service runs.
    public var logLevel: LiveSetting<Logger.Level>
    public var logFormat: LogFormat
    /// How long dependencies are retried at start before the service gives up (exit 1).
    public var startupTimeout: Duration
    /// How long in-flight calls may run after SIGTERM/SIGINT before they are cancelled.
    public var shutdownGrace: Duration
    /// The process's certificate, key and authorities: its server takes mutual TLS only, and its clients to other
    /// services present the same identity. `nil`: plaintext.
    public var tls: TLSFiles?
    /// `tls` as it is used while the process runs, re-read when its files change (`ServiceRunner` makes it).
    public var certificates: CertificateRotation?
    /// Set by tests: the server takes calls over this in-process transport instead of a socket.
    public var inProcess: InProcessTransport.Server?

    /// How the process's clients dial other services: with its certificate, or plaintext.
    public var clientSecurity: HTTP2ClientTransport.Posix.TransportSecurity { certificates?.client ?? .plaintext }

    /// Where the gRPC server takes calls.
    public var listener: GRPCServerService.Listener {
        inProcess.map { .inProcess($0) } ?? .socket(host: host, port: port, tls: certificates)
    }

    public init(
        host: String = "127.0.0.1",
        port: Int,
        metricsPort: Int = 0,
        logLevel: LiveSetting<Logger.Level> = LiveSetting(.info),
        logFormat: LogFormat = .text,
        startupTimeout: Duration = .seconds(60),
        shutdownGrace: Duration = .seconds(10),
        tls: TLSFiles? = nil
    ) {
        self.host = host
        self.port = port
        self.metricsPort = metricsPort
        self.logLevel = logLevel
        self.logFormat = logFormat
        self.startupTimeout = startupTimeout
        self.shutdownGrace = shutdownGrace
        self.tls = tls
    }

    /// The server settings of a service whose port is `defaultPort` unless configured.
    /// - Throws: `ConfigurationError` also when neither TLS nor `PLAINTEXT` is set, or both are: a service runs
    ///   in plaintext only when told so.
    public init(_ settings: Settings, defaultPort: Int, defaultMetricsPort: Int) throws(ConfigurationError) {
        self.init(
            host: try settings.value(ServerSettings.host),
            port: try settings.value(ServerSettings.port(default: defaultPort)),
            metricsPort: try settings.value(TelemetrySettings.metricsPort(default: defaultMetricsPort)),
            logLevel: try settings.live(ServerSettings.logLevel),
            logFormat: try settings.value(ServerSettings.logFormat),
            startupTimeout: try settings.value(ServerSettings.startupTimeout),
            shutdownGrace: try settings.value(ServerSettings.shutdownGrace),
            tls: try TLSFiles.configured(in: settings)
        )
        let plaintext = ServerSettings.plaintext
        switch (tls, try settings.value(plaintext)) {
        case (nil, false):
            let certificate = TLSFiles.certificateSetting
            throw ConfigurationError(
                key: certificate.environmentName, flag: certificate.flagName,
                problem: "is not set: a service takes calls over mutual TLS only, given \(TLSFiles.environmentNames) "
                    + "(docs/security.md), unless \(plaintext.environmentName)=true says to run unencrypted")
        case (.some, true):
            throw ConfigurationError(
                key: plaintext.environmentName, flag: plaintext.flagName,
                problem: "is true but \(TLSFiles.environmentNames) are set too: choose one")
        default: break
        }
    }
}

/// The settings every service has.
public enum ServerSettings {
    public static let host = Setting.text("host", default: "127.0.0.1", "Address to listen on (0.0.0.0 in containers).")
    public static func port(default defaultPort: Int) -> Setting<Int> {
        .integer("port", default: defaultPort, in: 0...65535, "Port to listen on.")
    }
    public static let logLevel = Setting<Logger.Level>.choice(
        "log.level", default: .info, reloads: true, "trace, debug, info, notice, warning, error or critical.")
    public static let logFormat = Setting<ServerConfiguration.LogFormat>.choice(
        "log.format", default: .text, "text, or json (one object per line, for collectors).")
    public static let startupTimeout = Setting.seconds(
        "startup.timeout", default: .seconds(60), in: 0...86_400,
        "Seconds to keep retrying dependencies at start before exiting 1.")
    public static let plaintext = Setting.toggle(
        "plaintext", default: false,
        "Run without TLS: calls and tokens travel unencrypted. Needed, and allowed, only without the TLS settings.")
    public static let shutdownGrace = Setting.seconds(
        "shutdown.grace", default: .seconds(10), in: 0...3_600, "Seconds in-flight calls get to finish on SIGTERM.")

    /// All of them, for the help and the flag check.
    public static func all(defaultPort: Int, defaultMetricsPort: Int) -> [any SettingDescription] {
        [
            Settings.configFile, host, port(default: defaultPort),
            TelemetrySettings.metricsPort(default: defaultMetricsPort),
            logLevel, logFormat, startupTimeout, shutdownGrace,
        ] + TLSFiles.settings + [plaintext]
    }
}

/// How services that verify tokens find the user service's public keys, and what tokens must say.
public struct TokenConfiguration: Sendable {
    /// A PEM file with one or more public keys (the user service writes it; several allow rotation).
    public var publicKeyFile: String?
    public var issuer: String
    public var audience: String

    public init(publicKeyFile: String? = nil, issuer: String, audience: String) {
        self.publicKeyFile = publicKeyFile
        self.issuer = issuer
        self.audience = audience
    }

    public init(_ settings: Settings) throws(ConfigurationError) {
        self.init(
            publicKeyFile: try settings.value(TokenSettings.publicKeyFile),
            issuer: try settings.value(TokenSettings.issuer),
            audience: try settings.value(TokenSettings.audience)
        )
    }
}

/// The settings of token verification, shared by every service that checks tokens.
public enum TokenSettings {
    public static let publicKeyFile = Setting<String?>.optionalText(
        "jwt.public.key.file", "PEM file of the public key(s) that verify tokens; re-read when a new key id appears.")
    public static let issuer = Setting.text("jwt.issuer", default: "shippy-user-service", "Token issuer, `iss`.")
    public static let audience = Setting.text("jwt.audience", default: "shippy", "Token audience, `aud`.")

    public static let all: [any SettingDescription] = [publicKeyFile, issuer, audience]
}
