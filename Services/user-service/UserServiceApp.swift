import Logging
import Metrics
import NIOCore
import PostgresNIO
import ServiceLifecycle
import ShippyConfiguration
import ShippyContracts
import ShippyDomain
import ShippyIdentity
import ShippyMessaging
import ShippyPostgres
import ShippyRuntime
import ShippyStorage

/// The user service's configuration, from its settings.
struct UserServiceConfiguration: Sendable {
    var server: ServerConfiguration
    /// `postgres://…`; holds the database password, so it has no default and is only logged redacted.
    var postgresURL: String
    var signingKey: SigningKeyConfiguration
    var tokens: TokenConfiguration
    var tokenLifetime: LiveSetting<Duration>
    var refreshLifetime: LiveSetting<Duration>
    var bcryptCost: Int
    /// bcrypt works that may run or wait at once, and the longest expected wait a call is queued for; beyond
    /// either, or past its deadline, a call is refused at once with `unavailable`.
    var bcryptQueue: LiveSetting<Int>
    var bcryptMaximumWait: LiveSetting<Duration>
    /// Failed logins per email and address before the next must wait, and the longest wait.
    var loginFreeFailures: LiveSetting<Int>
    var loginMaximumDelay: LiveSetting<Duration>
    /// Where `user.created` events go.
    var nats: NATSEndpoint
    /// The gateways whose word about a client's address is taken (for the login throttle).
    var trustedGateways = AddressSet()

    static let postgresURL = Setting.text(
        "postgres.url", secret: true,
        "postgres://user:password@host:port/database[?sslmode=…&sslrootcert=FILE], over TLS verified for the host "
            + "unless sslmode says otherwise; secret (no flag, never logged).")
    static let privateKeyFile = Setting<String?>.optionalText(
        "jwt.private.key.file", "PEM file of the ES256 signing key (or JWT_PRIVATE_KEY with the PEM itself).")
    static let privateKey = Setting<String?>.optionalText(
        "jwt.private.key", secret: true, "The ES256 signing key as PEM text; wins over the file.")
    static let generateKey = Setting.toggle(
        "jwt.generate.key", default: false, "true to create a development key when the key file is missing.")
    static let tokenLifetime = Setting.seconds(
        "token.lifetime", default: .seconds(900), in: 60...86_400, reloads: true,
        "Seconds a new access token stays valid (a refresh token gets the next one).")
    static let refreshLifetime = Setting.seconds(
        "refresh.lifetime", default: .seconds(2_592_000), in: 300...31_536_000, reloads: true,
        "Seconds a refresh token stays valid unused; each use gives a new one for as long again.")
    static let bcryptCost = Setting.integer("bcrypt.cost", default: 12, in: 4...16, "bcrypt cost.")
    static let bcryptQueue = Setting.integer(
        "bcrypt.queue", default: 256, in: 1...10_000, reloads: true,
        "bcrypt works (sign-ups, logins) that may run or wait at once; more are refused, to retry.")
    static let bcryptMaximumWait = Setting.seconds(
        "bcrypt.max.wait", default: .seconds(30), in: 0...600, reloads: true,
        "The longest expected wait for which a sign-up or login is queued; longer, or past its deadline, it is refused."
    )
    static let loginFreeFailures = Setting.integer(
        "login.free.failures", default: 3, in: 0...1_000, reloads: true,
        "Failed logins per email and address before each next attempt must wait (0.5 s, doubling).")
    static let loginMaximumDelay = Setting.seconds(
        "login.max.delay", default: .seconds(30), in: 0.5...3_600, reloads: true,
        "The longest wait after failed logins.")
    static let settings: [any SettingDescription] = [
        postgresURL, privateKeyFile, privateKey, generateKey, tokenLifetime, refreshLifetime, bcryptCost, bcryptQueue,
        bcryptMaximumWait, loginFreeFailures, loginMaximumDelay, SharedSettings.natsURL, SharedSettings.natsAuthorities,
        SharedSettings.trustedGateways,
    ]
}

extension UserServiceConfiguration {
    init(_ settings: Settings, server: ServerConfiguration) throws(ConfigurationError) {
        let tokens = try TokenConfiguration(settings)
        self.init(
            server: server,
            postgresURL: try settings.value(Self.postgresURL),
            signingKey: SigningKeyConfiguration(
                privateKeyPEM: try settings.value(Self.privateKey),
                privateKeyFile: try settings.value(Self.privateKeyFile),
                generateKey: try settings.value(Self.generateKey),
                publicKeyFile: tokens.publicKeyFile),
            tokens: tokens,
            tokenLifetime: try settings.live(Self.tokenLifetime),
            refreshLifetime: try settings.live(Self.refreshLifetime),
            bcryptCost: try settings.value(Self.bcryptCost),
            bcryptQueue: try settings.live(Self.bcryptQueue),
            bcryptMaximumWait: try settings.live(Self.bcryptMaximumWait),
            loginFreeFailures: try settings.live(Self.loginFreeFailures),
            loginMaximumDelay: try settings.live(Self.loginMaximumDelay),
            nats: NATSEndpoint(
                url: try settings.value(SharedSettings.natsURL),
                authorities: try settings.value(SharedSettings.natsAuthorities)),
            trustedGateways: try settings.value(SharedSettings.trustedGateways))
    }

    /// The bcrypt admission's policy as configured now.
    var admissionPolicy: @Sendable () -> AdmissionGate.Policy {
        { [bcryptQueue, bcryptMaximumWait] in
            AdmissionGate.Policy(queueLimit: bcryptQueue.value, maximumWait: bcryptMaximumWait.value)
        }
    }

    /// The login throttle's policy as configured now.
    var loginPolicy: @Sendable () -> LoginThrottle.Policy {
        { [loginFreeFailures, loginMaximumDelay] in
            LoginThrottle.Policy(freeFailures: loginFreeFailures.value, maximumDelay: loginMaximumDelay.value)
        }
    }
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
            throw UserServiceConfiguration.postgresURL.error(error.message)
        }
        let client = PostgresClient(configuration: postgresConfiguration, backgroundLogger: logger)
        let repository = PostgresUserRepository(client: client, logger: logger)
        let database = Dependency(
            name: "PostgreSQL at \(PostgresURL.redact(configuration.postgresURL))",
            connect: { try await repository.migrate() },
            probe: { try await repository.ping() }
        )
        var app = try await build(
            configuration: configuration, repository: repository, dependencies: [database], logger: logger)
        let publisher = OutboxPublisher(
            nats: configuration.nats, stream: UserEvents.jetStream, outbox: repository, ready: app.ready,
            client: "user-service", logger: logger)
        // Published events are deleted after the stream's retention, as the stream forgets them.
        let backlog = OutboxPublisher.gauges(of: repository, logger: logger) {
            _ = try await repository.prunePublished(olderThan: UserEvents.retention)
            _ = try await repository.pruneEndedSessions()
        }
        app = UserServiceApp(
            health: app.health, server: app.server, signer: app.signer, ready: app.ready,
            services: [("postgres", client), ("outbox-publisher", publisher), ("outbox-gauges", backlog)] + app.services
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
            lifetime: { configuration.tokenLifetime.value }
        )
        let hasher = try await PasswordHasher.start(
            cost: UInt8(configuration.bcryptCost), threads: System.coreCount, admission: configuration.admissionPolicy)
        let keyFile = configuration.tokens.publicKeyFile.map {
            PublicKeyFileVerifier(
                path: $0, issuer: configuration.tokens.issuer, audience: configuration.tokens.audience)
        }
        let verifier = VerifiedTokenCache(OwnKeyThenFileVerifier(own: signer.verifier, file: keyFile))
        let handler = UserServiceHandler(
            repository: repository, hasher: hasher, signer: signer, verifier: verifier,
            refreshLifetime: { configuration.refreshLifetime.value },
            throttle: LoginThrottle(policy: configuration.loginPolicy), logger: logger)
        // Not a network dependency: listed so that its threads stop with the rest at shutdown.
        let hashing = Dependency(name: "bcrypt threads", connect: {}, close: { await hasher.shutdown() })
        let assembly = ServiceAssembly(
            serving: User_UserService.descriptor, handler: handler, verifier: verifier,
            publicMethods: UserServiceHandler.publicMethods, trustedGateways: configuration.trustedGateways,
            dependencies: dependencies + (keyFile.map { [.tokenKeys($0)] } ?? []) + [hashing],
            configuration: configuration.server, logger: logger)
        return UserServiceApp(
            health: assembly.health, server: assembly.server, signer: signer, ready: assembly.readiness.ready,
            services: assembly.services())
    }
}
