import ArgumentParser
import Logging
import ShippyConfiguration

/// What every service needs to run: where to listen, how to log, how long to wait at start and at stop.
public struct ServerConfiguration: Sendable {
    public enum LogFormat: String, Sendable, CaseIterable {
        case text, json
    }

    public var host: String
    public var port: Int
    public var logLevel: Logger.Level
    public var logFormat: LogFormat
    /// How long dependencies are retried at start before the service gives up (exit 1).
    public var startupTimeout: Duration
    /// How long in-flight calls may run after SIGTERM/SIGINT before they are cancelled.
    public var shutdownGrace: Duration

    public init(
        host: String = "127.0.0.1",
        port: Int,
        logLevel: Logger.Level = .info,
        logFormat: LogFormat = .text,
        startupTimeout: Duration = .seconds(60),
        shutdownGrace: Duration = .seconds(10)
    ) {
        self.host = host
        self.port = port
        self.logLevel = logLevel
        self.logFormat = logFormat
        self.startupTimeout = startupTimeout
        self.shutdownGrace = shutdownGrace
    }
}

/// The command-line flags every service accepts; each overrides the environment variable in its help.
public struct ServerOptions: ParsableArguments {
    @Option(help: "Address to listen on (env HOST, default 127.0.0.1; 0.0.0.0 in containers).")
    public var host: String?

    @Option(help: "Port to listen on (env PORT; the default is the service's own).")
    public var port: String?

    @Option(help: "trace, debug, info, notice, warning, error or critical (env LOG_LEVEL, default info).")
    public var logLevel: String?

    @Option(help: "text or json (env LOG_FORMAT, default text).")
    public var logFormat: String?

    @Option(help: "Seconds to keep retrying dependencies at start (env STARTUP_TIMEOUT, default 60).")
    public var startupTimeout: String?

    @Option(help: "Seconds in-flight calls get to finish on SIGTERM (env SHUTDOWN_GRACE, default 10).")
    public var shutdownGrace: String?

    public init() {}

    /// Merges flags, environment and defaults, validating each value.
    public func resolve(
        defaultPort: Int, _ reader: ConfigurationReader
    ) throws(ConfigurationError)
        -> ServerConfiguration
    {
        ServerConfiguration(
            host: try reader.string("HOST", flag: ("host", host), default: "127.0.0.1"),
            port: try reader.integer("PORT", flag: ("port", port), default: defaultPort, in: 0...65535),
            logLevel: try reader.choice("LOG_LEVEL", flag: ("log-level", logLevel), default: .info),
            logFormat: try reader.choice("LOG_FORMAT", flag: ("log-format", logFormat), default: .text),
            startupTimeout: try reader.seconds(
                "STARTUP_TIMEOUT", flag: ("startup-timeout", startupTimeout), default: .seconds(60), in: 0...86_400),
            shutdownGrace: try reader.seconds(
                "SHUTDOWN_GRACE", flag: ("shutdown-grace", shutdownGrace), default: .seconds(10), in: 0...3_600)
        )
    }
}

/// How services that verify tokens find the user service's public keys, and what tokens must say.
public struct TokenConfiguration: Sendable {
    /// A PEM file with one or more public keys (the user service writes it; several allow rotation).
    public var publicKeyFile: String?
    public var issuer: String
    public var audience: String
}

/// The command-line flags of token verification, shared by every service that checks tokens.
public struct TokenOptions: ParsableArguments {
    @Option(help: "PEM file of the public key(s) that verify tokens (env JWT_PUBLIC_KEY_FILE).")
    public var jwtPublicKeyFile: String?

    @Option(help: "Token issuer, `iss` (env JWT_ISSUER, default shippy-user-service).")
    public var jwtIssuer: String?

    @Option(help: "Token audience, `aud` (env JWT_AUDIENCE, default shippy).")
    public var jwtAudience: String?

    public init() {}

    public func resolve(_ reader: ConfigurationReader) throws(ConfigurationError) -> TokenConfiguration {
        TokenConfiguration(
            publicKeyFile: reader.raw("JWT_PUBLIC_KEY_FILE", flag: jwtPublicKeyFile),
            issuer: try reader.string("JWT_ISSUER", flag: ("jwt-issuer", jwtIssuer), default: "shippy-user-service"),
            audience: try reader.string("JWT_AUDIENCE", flag: ("jwt-audience", jwtAudience), default: "shippy")
        )
    }
}
