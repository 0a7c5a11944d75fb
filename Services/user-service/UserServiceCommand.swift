import ArgumentParser
import Logging
import NIOCore
import ShippyConfiguration
import ShippyRuntime

/// `user-service`: the gRPC service `user.UserService` over PostgreSQL.
@main
struct UserServiceCommand: AsyncParsableCommand, ServiceIdentity {
    static let name = "user-service"
    static let defaultPort = 50053

    static let configuration = CommandConfiguration(
        commandName: name,
        abstract: "Signs users up, logs them in with JWTs and validates tokens (gRPC user.UserService).",
        discussion: "Every flag overrides the environment variable named in its help. Secrets have no flag: "
            + "POSTGRES_URL carries the database password and JWT_PRIVATE_KEY the key itself. Exit status: 0 after "
            + "a graceful shutdown, 1 on a bad configuration or a failure at start, 64 on bad usage.",
        subcommands: [Serve.self, HealthcheckCommand<UserServiceCommand>.self],
        defaultSubcommand: Serve.self
    )
}

/// `user-service [serve]`: reads the configuration, then runs until SIGTERM or SIGINT.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the service (the default).")

    @OptionGroup var server: ServerOptions
    @OptionGroup var tokens: TokenOptions

    @Option(help: "PEM file of the ES256 signing key (env JWT_PRIVATE_KEY_FILE; or env JWT_PRIVATE_KEY with the PEM).")
    var jwtPrivateKeyFile: String?

    @Option(
        help: "true to create a development key when the key file is missing (env JWT_GENERATE_KEY, default false).")
    var jwtGenerateKey: String?

    @Option(help: "Seconds a token stays valid (env TOKEN_LIFETIME, default 86400).")
    var tokenLifetime: String?

    @Option(help: "bcrypt cost, 4 to 16 (env BCRYPT_COST, default 12).")
    var bcryptCost: String?

    @Option(
        help:
            "bcrypt works that may run or wait at once; more are refused to retry (env BCRYPT_QUEUE, default one per core)."
    )
    var bcryptQueue: String?

    @Option(help: "Comma-separated emails whose tokens carry the admin role (env ADMIN_EMAILS, default none).")
    var adminEmails: String?

    @Option(help: "NATS server for user.created events (env NATS_URL, default nats://127.0.0.1:4222).")
    var natsURL: String?

    func run() async throws {
        let reader = ConfigurationReader()
        let tokenConfiguration = try tokens.resolve(reader)
        let configuration = UserServiceConfiguration(
            server: try server.resolve(defaultPort: UserServiceCommand.defaultPort, reader),
            postgresURL: try reader.string("POSTGRES_URL"),
            signingKey: SigningKeyConfiguration(
                privateKeyPEM: reader.raw("JWT_PRIVATE_KEY", flag: nil),
                privateKeyFile: reader.raw("JWT_PRIVATE_KEY_FILE", flag: jwtPrivateKeyFile),
                generateKey: try reader.choice(
                    "JWT_GENERATE_KEY", flag: ("jwt-generate-key", jwtGenerateKey), default: Toggle.false) == .true,
                publicKeyFile: tokenConfiguration.publicKeyFile
            ),
            tokens: tokenConfiguration,
            tokenLifetime: try reader.seconds(
                "TOKEN_LIFETIME", flag: ("token-lifetime", tokenLifetime), default: .seconds(86_400),
                in: 60...31_536_000),
            bcryptCost: try reader.integer("BCRYPT_COST", flag: ("bcrypt-cost", bcryptCost), default: 12, in: 4...16),
            bcryptQueue: try reader.integer(
                "BCRYPT_QUEUE", flag: ("bcrypt-queue", bcryptQueue), default: System.coreCount, in: 1...10_000),
            adminEmails: try reader.emailList("ADMIN_EMAILS", flag: ("admin-emails", adminEmails)),
            natsURL: try reader.string("NATS_URL", flag: ("nats-url", natsURL), default: "nats://127.0.0.1:4222")
        )
        try await ServiceRunner.run(UserServiceCommand.name, configuration: configuration.server) { logger in
            try await UserServiceApp.build(configuration: configuration, logger: logger).services
        }
    }
}
