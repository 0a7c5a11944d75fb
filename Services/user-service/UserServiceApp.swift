import Logging
import PostgresNIO
import ServiceLifecycle
import ShippyConfiguration
import ShippyContracts
import ShippyDomain
import ShippyIdentity
import ShippyPostgres
import ShippyRuntime
import ShippyStorage

/// The user service's configuration, resolved from flags and environment.
struct UserServiceConfiguration: Sendable {
    var server: ServerConfiguration
    /// `postgres://…`; holds the database password, so it has no default and is only logged redacted.
    var postgresURL: String
    var signingKey: SigningKeyConfiguration
    var tokens: TokenConfiguration
    var tokenLifetime: Duration
    var bcryptCost: Int
    /// bcrypt works that may run or wait at once; beyond, calls are refused with `unavailable`.
    var bcryptQueue: Int
    /// Emails (lowercased) whose tokens carry the `admin` role.
    var adminEmails: Set<String>
    /// Where `user.created` events go.
    var natsURL: String
}

/// The wiring of the user service, shared by `main` and the tests.
struct UserServiceApp {
    let health: HealthService
    let server: GRPCServerService
    let signer: TokenSigner
    /// Opens once the dependencies are connected.
    let ready: ReadinessSignal
    /// In start order: the PostgreSQL pool, readiness, then the gRPC server (which stops first).
    let services: [(name: String, service: any Service)]

    /// Builds the PostgreSQL-backed service. Nothing connects until the services run.
    /// - Throws: `ConfigurationError` for a bad URL or key.
    static func build(configuration: UserServiceConfiguration, logger: Logger) async throws -> UserServiceApp {
        let postgresConfiguration: PostgresClient.Configuration
        do {
            postgresConfiguration = try PostgresURL.configuration(configuration.postgresURL)
        } catch {
            throw ConfigurationError(key: "POSTGRES_URL", problem: error.message)
        }
        let client = PostgresClient(configuration: postgresConfiguration, backgroundLogger: logger)
        let repository = PostgresUserRepository(client: client, logger: logger)
        let database = Dependency(
            name: "PostgreSQL at \(PostgresURL.redact(configuration.postgresURL))",
            connect: { try await repository.migrate() }
        )
        var app = try await build(
            configuration: configuration, repository: repository, dependencies: [database], logger: logger)
        let publisher = OutboxPublisher(
            natsURL: configuration.natsURL, outbox: repository, ready: app.ready, logger: logger)
        app = UserServiceApp(
            health: app.health, server: app.server, signer: app.signer, ready: app.ready,
            services: [("postgres", client), ("outbox-publisher", publisher)] + app.services
        )
        return app
    }

    /// Builds the service over any repository; tests pass an in-memory one.
    static func build(
        configuration: UserServiceConfiguration,
        repository: any UserRepository,
        dependencies: [Dependency],
        logger: Logger
    ) async throws -> UserServiceApp {
        let key = try SigningKeyLoader.load(configuration.signingKey, logger: logger)
        let signer = await TokenSigner(
            privateKey: key,
            issuer: configuration.tokens.issuer,
            audience: configuration.tokens.audience,
            lifetime: configuration.tokenLifetime
        )
        let hasher = try await PasswordHasher.start(
            cost: UInt8(configuration.bcryptCost), threads: System.coreCount, queueLimit: configuration.bcryptQueue)
        let handler = UserServiceHandler(
            repository: repository, hasher: hasher, signer: signer, adminEmails: configuration.adminEmails,
            throttle: LoginThrottle(), logger: logger)
        let health = HealthService(services: [User_UserService.descriptor.fullyQualifiedService])
        let server = GRPCServerService(
            host: configuration.server.host,
            port: configuration.server.port,
            services: [handler],
            health: health,
            interceptors: [
                AuthInterceptor(
                    verifier: signer.verifier, protecting: User_UserService.descriptor,
                    publicMethods: UserServiceHandler.publicMethods)
            ],
            logger: logger
        )
        // Not a network dependency: listed so that its threads stop with the rest at shutdown.
        let hashing = Dependency(name: "bcrypt threads", connect: {}, close: { await hasher.shutdown() })
        let readiness = ReadinessService(
            dependencies: dependencies + [hashing],
            retry: StartupRetry(deadline: configuration.server.startupTimeout),
            health: health,
            logger: logger
        )
        return UserServiceApp(
            health: health, server: server, signer: signer, ready: readiness.ready,
            services: [("readiness", readiness), ("grpc-server", server)]
        )
    }
}
