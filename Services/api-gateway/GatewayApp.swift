import Foundation
import GRPCCore
import HTTPTypes
import Hummingbird
import Logging
import NIOSSL
import OpenAPIHummingbird
import OpenAPIRuntime
import ServiceLifecycle
import ShippyConfiguration
import ShippyDiscovery
import ShippyMessaging
import ShippyRuntime

/// The gateway's configuration, resolved from flags, environment and the configuration file.
struct GatewayConfiguration: Sendable {
    var server: ServerConfiguration
    var userServiceAddress: String
    var consignmentServiceAddress: String
    var vesselServiceAddress: String
    /// Deadline of each call to a service.
    var timeout: Duration
    /// Sign-ups and log-ins per client address and minute.
    var authenticationsPerMinute: Int
    /// The largest request body taken.
    var bodyLimit: Int
    /// A connection that sends no complete request part for this long is closed: an idle keep-alive connection,
    /// a head sent a byte at a time (slowloris), a body that stalls.
    var idleTimeout: Duration
    /// A request's body that has not arrived in full this long after its head is a 408 (a body trickled a byte at a
    /// time never trips the idle timeout).
    var readTimeout: Duration
    /// Proxies in front of the gateway whose `Forwarded`/`X-Forwarded-For` is believed.
    var trustedProxies: AddressSet
    /// The certificate and key HTTPS is served with; `nil`: plain HTTP (behind a proxy that terminates TLS).
    var https: (certificate: String, key: String)?
    /// How long browsers keep to HTTPS once answered over it (`Strict-Transport-Security`); 0: no header.
    var strictTransportSecurity: Int
    /// Where the consignment events of the live streams come from, and how many one user may hold open.
    var nats: NATSEndpoint
    var liveStreamsPerUser: Int

    static let timeout = Setting.seconds(
        "request.timeout", default: .seconds(10), in: 0.1...300, "Seconds each call to a service may take.")
    static let authenticationsPerMinute = Setting.integer(
        "rate.limit.auth", default: 20, in: 1...1_000_000,
        "Sign-ups and log-ins each client address may make a minute (429 past it).")
    /// Above the largest valid consignment (1,000 containers with every field at its longest is about 2.4 MB as
    /// protobuf, more as JSON with escapes): what the document allows is taken, anything larger is a 413.
    static let bodyLimit = Setting.integer(
        "body.limit", default: 4_194_304, in: 1_024...16_777_216,
        "The largest request body taken, in bytes (413 past it).")
    static let idleTimeout = Setting.seconds(
        "http.idle.timeout", default: .seconds(30), in: 0.1...3_600,
        "Seconds a connection may send no complete request part (a head, a piece of body) before it is closed.")
    static let readTimeout = Setting.seconds(
        "http.read.timeout", default: .seconds(60), in: 0.1...3_600,
        "Seconds a request's body may take to arrive in full after its head (408 past it).")
    static let trustedProxies = Setting.addresses(
        "trusted.proxies",
        "IP addresses and networks of the proxies in front of the gateway whose Forwarded or X-Forwarded-For names "
            + "the client (comma-separated); from any other peer, the peer is the client.")
    static let httpsCertificate = Setting<String?>.optionalText(
        "https.certificate",
        "PEM file of the certificate chain HTTPS is served with (for the name browsers use; re-read when it "
            + "changes); none: plain HTTP, for a proxy that terminates TLS.")
    static let httpsKey = Setting<String?>.optionalText("https.key", "PEM file of the HTTPS certificate's private key.")
    static let strictTransportSecurity = Setting.integer(
        "https.hsts.max.age", default: 31_536_000, in: 0...63_072_000,
        "Seconds browsers keep to HTTPS once answered over it (Strict-Transport-Security); 0 sends none.")
    static let liveStreamsPerUser = Setting.integer(
        "live.streams.per.user", default: 8, in: 1...1_000,
        "Live streams of consignment events (GET /v1/consignment-events, one per browser tab) one user may hold "
            + "open at once; 429 past it.")
    static let settings: [any SettingDescription] = [
        SharedSettings.userServiceAddress, SharedSettings.consignmentServiceAddress,
        SharedSettings.vesselServiceAddress, timeout, authenticationsPerMinute,
        bodyLimit, idleTimeout, readTimeout, trustedProxies, httpsCertificate, httpsKey, strictTransportSecurity,
        SharedSettings.natsURL, SharedSettings.natsAuthorities, liveStreamsPerUser,
    ]

    init(_ settings: Settings, server: ServerConfiguration) throws(ConfigurationError) {
        self.server = server
        userServiceAddress = try settings.value(SharedSettings.userServiceAddress)
        consignmentServiceAddress = try settings.value(SharedSettings.consignmentServiceAddress)
        vesselServiceAddress = try settings.value(SharedSettings.vesselServiceAddress)
        timeout = try settings.value(Self.timeout)
        authenticationsPerMinute = try settings.value(Self.authenticationsPerMinute)
        bodyLimit = try settings.value(Self.bodyLimit)
        idleTimeout = try settings.value(Self.idleTimeout)
        readTimeout = try settings.value(Self.readTimeout)
        trustedProxies = try settings.value(Self.trustedProxies)
        switch (try settings.value(Self.httpsCertificate), try settings.value(Self.httpsKey)) {
        case (let certificate?, let key?): https = (certificate, key)
        case (nil, nil): https = nil
        case (_, nil): throw Self.needed(Self.httpsKey)
        case (nil, _): throw Self.needed(Self.httpsCertificate)
        }
        strictTransportSecurity = try settings.value(Self.strictTransportSecurity)
        nats = NATSEndpoint(
            url: try settings.value(SharedSettings.natsURL),
            authorities: try settings.value(SharedSettings.natsAuthorities))
        liveStreamsPerUser = try settings.value(Self.liveStreamsPerUser)
    }

    private static func needed(_ setting: Setting<String?>) -> ConfigurationError {
        ConfigurationError(
            key: setting.environmentName, flag: setting.flagName,
            problem: "is needed with the other HTTPS setting (both, or neither)")
    }
}

/// The bearer token of the request being handled, which the edge puts here for the handlers (the OpenAPI
/// document declares it as a security scheme, not a parameter). Never logged.
enum BearerToken {
    @TaskLocal static var current: String?

    struct Middleware: RouterMiddleware {
        typealias Context = GatewayContext

        func handle(
            _ request: Request, context: Context, next: (Request, Context) async throws -> Response
        ) async throws -> Response {
            let token = request.headers[.authorization].flatMap(AuthInterceptor.bearerToken(inAuthorization:))
            return try await BearerToken.$current.withValue(token?.isEmpty == true ? nil : token) {
                try await next(request, context)
            }
        }
    }
}

/// The wiring of the gateway: a gRPC client per service, and the Hummingbird application.
struct GatewayApp {
    let services: [(name: String, service: any Service)]

    /// - Throws: `ConfigurationError` for a bad service address; what the generated routing throws.
    static func build(configuration: GatewayConfiguration, logger: Logger) throws -> GatewayApp {
        func client(_ address: String, _ setting: Setting<String>) throws -> GRPCClientService {
            // Each call carries the client's address; a service trusts it from its configured gateways only.
            try GRPCClientService(
                target: try ServiceAddress.target(address, key: setting.displayName),
                security: configuration.server.clientSecurity,
                interceptors: [ClientAddressForwarding()])
        }
        let users = try client(configuration.userServiceAddress, SharedSettings.userServiceAddress)
        let consignments = try client(
            configuration.consignmentServiceAddress, SharedSettings.consignmentServiceAddress)
        let vessels = try client(configuration.vesselServiceAddress, SharedSettings.vesselServiceAddress)
        let live = LiveConsignmentEvents(
            nats: configuration.nats, perUser: configuration.liveStreamsPerUser, logger: logger)
        let handler = APIHandler(
            users: users.client, consignments: consignments.client, vessels: vessels.client,
            timeout: configuration.timeout, live: live)
        var services: [(name: String, service: any Service)] = [
            ("user-client", users), ("consignment-client", consignments), ("vessel-client", vessels),
        ]
        var https: TLSConfiguration?
        var strictTransportSecurity: String?
        if let files = configuration.https {
            let certificate = try CertificateRotation(
                certificate: (files.certificate, GatewayConfiguration.httpsCertificate),
                key: (files.key, GatewayConfiguration.httpsKey), use: "https", logger: logger)
            https = try certificate.httpsConfiguration()
            services.append(("https-certificate", certificate))
            // Sent over HTTPS only: browsers ignore it over plain HTTP (RFC 6797).
            if configuration.strictTransportSecurity > 0 {
                strictTransportSecurity = "max-age=\(configuration.strictTransportSecurity)"
            }
        }
        let router = try makeRouter(
            handler: handler, limiter: RateLimiter(perMinute: configuration.authenticationsPerMinute),
            body: BodyMiddleware(limit: configuration.bodyLimit, readTimeout: configuration.readTimeout),
            trustedProxies: configuration.trustedProxies, strictTransportSecurity: strictTransportSecurity)
        let app = Application(
            router: router, server: try httpServer(idleTimeout: configuration.idleTimeout, tls: https),
            configuration: .init(
                address: .hostname(configuration.server.host, port: configuration.server.port),
                serverName: "shippy-api-gateway"),
            logger: logger)
        // The live streams last: shut down first, they end every stream, so that the HTTP server's drain is not
        // held by them.
        return GatewayApp(services: services + [("http", app), ("live-events", live)])
    }

    /// The routes: the generated API, /openapi.yaml, and the web app's files at /.
    static func makeRouter(
        handler: APIHandler, limiter: RateLimiter, body: BodyMiddleware, trustedProxies: AddressSet,
        strictTransportSecurity: String? = nil
    ) throws -> Router<GatewayContext> {
        let router = Router(context: GatewayContext.self, options: .autoGenerateHeadEndpoints)
        // hb_requests / hb_request_duration by route and status, and a server span per request that the calls to
        // the services continue (no header recorded: the token stays out of traces; page tokens redacted).
        router.add(middleware: MetricsMiddleware())
        router.add(middleware: OutsideTraceContextMiddleware(trustedProxies: trustedProxies))
        router.add(middleware: TracingMiddleware(redactingQueryParameters: ["page_token"]))
        router.add(middleware: EdgeMiddleware(strictTransportSecurity: strictTransportSecurity))
        router.add(middleware: body)
        router.add(middleware: ClientAddressMiddleware(trustedProxies: trustedProxies))
        router.add(middleware: RateLimitMiddleware(limiter: limiter, paths: ["/v1/users", "/v1/sessions"]))
        router.add(middleware: BearerToken.Middleware())
        router.add(middleware: IdempotencyKeyMiddleware())
        router.add(middleware: FileMiddleware(webRoot, searchForIndexHtml: true))
        router.get("/openapi.yaml") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/yaml"],
                body: .init(byteBuffer: ByteBuffer(bytes: Self.document)))
        }
        let transport = RecordingTransport(router: router)
        transport.routes.add(.get, "/openapi.yaml")
        try handler.registerHandlers(on: transport, serverURL: URL(string: "/")!)
        // Added after the routes, so in Hummingbird it runs only where no route answers.
        router.add(middleware: MethodNotAllowedMiddleware(routes: transport.routes))
        return router
    }

    /// The router, as the generated code registers the document's operations on it, noting each route's methods.
    final class RecordingTransport: OpenAPIRuntime.ServerTransport {
        let router: Router<GatewayContext>
        var routes = RouteMethods()

        init(router: Router<GatewayContext>) { self.router = router }

        func register(
            _ handler:
                @escaping @Sendable (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (
                    HTTPResponse, HTTPBody?
                ),
            method: HTTPRequest.Method, path: String
        ) throws {
            try router.register(handler, method: method, path: path)
            routes.add(method, path)
        }
    }

    /// The folder of the web app's files (index.html, app.js, …), shipped beside the executable.
    static let webRoot = Bundle.module.url(forResource: "Public", withExtension: nil)!.path

    /// The OpenAPI document, as committed.
    static let document =
        (try? Data(contentsOf: Bundle.module.url(forResource: "openapi", withExtension: "yaml")!))
        ?? Data()
}
