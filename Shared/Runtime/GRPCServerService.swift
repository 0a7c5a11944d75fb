import GRPCCore
import GRPCInProcessTransport
import GRPCNIOTransportHTTP2
import Logging
import NIOPosix
import ServiceLifecycle
import ShippyContracts
import ShippyDomain
import ShippyTelemetry

/// The gRPC server as a swift-service-lifecycle `Service`, with the health service registered beside the
/// service's own.
///
/// On graceful shutdown (SIGTERM/SIGINT) it reports NOT_SERVING, stops accepting new calls and returns
/// once the calls in flight have finished; the service group cancels them after its grace period.
public struct GRPCServerService: Service {
    /// The largest request message a server reads. Above it grpc-swift resets the stream without a status,
    /// so the ceiling sits just above every valid request (a consignment of the most containers with every
    /// field at its longest in 4-byte characters is about 2.4 MB): a message under it that breaks a field's
    /// limit gets `invalidArgument` naming the field; only a message over it is cut off.
    public static let maximumRequestBytes = 4 << 20

    /// What one connection may hold: streams at once (HTTP/2 SETTINGS, as Go's server; a client that opens more
    /// loses its connection, as swift-nio-http2 answers GOAWAY), how long it may sit without a call and how long it
    /// may live (then it is closed gracefully, its calls given `grace` to finish; clients reconnect at their next
    /// call). Bounds what one client can pin.
    public struct ConnectionLimits: Sendable {
        public var streams: Int
        public var idleTime: Duration
        public var age: Duration
        public var grace: Duration

        public init(
            streams: Int = 250, idleTime: Duration = .seconds(300), age: Duration = .seconds(3600),
            grace: Duration = .seconds(30)
        ) {
            self.streams = streams
            self.idleTime = idleTime
            self.age = age
            self.grace = grace
        }

        public static let standard = ConnectionLimits()
    }

    /// Where calls come in: a TCP socket (mutual TLS with `tls`, else plaintext), or an in-process transport (tests
    /// run the production wiring over it).
    public enum Listener: Sendable {
        case socket(host: String, port: Int, tls: CertificateRotation? = nil)
        case inProcess(InProcessTransport.Server)
    }

    private let server: any GRPCServing
    /// Where the server's tasks run: NIO's event loops for a socket (see `EventLoopTaskExecutor`), the global
    /// executor in process.
    private let executor: EventLoopTaskExecutor?
    private let health: HealthService
    private let logger: Logger

    /// - Parameters:
    ///   - restricted: methods only some callers may call, by the identity their certificate names
    ///     (`CallerIdentity`); enforced over TLS only, where there is an identity to check.
    ///   - interceptors: run after the telemetry, the call log, the readiness gate, the caller's identity and the
    ///     deadline that every server has.
    public init(
        listener: Listener,
        services: [any RegistrableRPCService],
        health: HealthService,
        restricted: [MethodDescriptor: Set<String>] = [:],
        interceptors: [any ServerInterceptor] = [],
        limits: ConnectionLimits = .standard,
        logger: Logger
    ) {
        let services = services + [health]
        // Only over TLS is there an identity to bind or check: in plaintext, no call pays for the interceptor.
        var identity: [any ServerInterceptor] = []
        if case .socket(_, _, .some) = listener { identity = [CallerIdentityInterceptor(restricted: restricted)] }
        let interceptors: [any ServerInterceptor] =
            [ServerCallTelemetry(), CallLog(logger: logger), ReadinessGate(health: health)] + identity
            + [CallDeadlineInterceptor()] + interceptors
        switch listener {
        case .socket(let host, let port, let tls):
            let address: GRPCNIOTransportCore.SocketAddress =
                host.contains(":") ? .ipv6(host: host, port: port) : .ipv4(host: host, port: port)
            let config = HTTP2ServerTransport.Posix.Config.defaults { config in
                config.rpc.maxRequestPayloadSize = Self.maximumRequestBytes
                config.http2.maxConcurrentStreams = limits.streams
                config.connection.maxIdleTime = limits.idleTime
                config.connection.maxAge = limits.age
                config.connection.maxGraceTime = limits.grace
                // Shippy's clients ping every couple of seconds to find a dead peer fast (ServiceTransport); the
                // default would count those pings as abuse and close the connection.
                config.connection.keepalive.clientBehavior = .init(
                    minPingIntervalWithoutCalls: .seconds(1), allowWithoutCalls: true)
                // The transport's one hook into an accepted connection's pipeline: where a refused handshake
                // can be seen, counted and logged.
                if tls != nil {
                    let refusals = HandshakeRefusals(logger: logger)
                    config.channelDebuggingCallbacks.onAcceptTCPConnection = { refusals.watch($0) }
                }
            }
            let loops = MultiThreadedEventLoopGroup.singleton
            executor = EventLoopTaskExecutor(loops)
            server = GRPCServer(
                transport: .http2NIOPosix(
                    address: address, transportSecurity: tls?.server ?? .plaintext, config: config,
                    eventLoopGroup: loops),
                services: services, interceptors: interceptors)
        case .inProcess(let transport):
            executor = nil
            server = GRPCServer(transport: transport, services: services, interceptors: interceptors)
        }
        self.health = health
        self.logger = logger
    }

    /// The socket the server listens on once it has bound (useful when the configured port is 0); `nil` in
    /// process.
    public var listeningAddress: GRPCNIOTransportCore.SocketAddress? {
        get async throws { try await (server as? GRPCServer<HTTP2ServerTransport.Posix>)?.transport.listeningAddress }
    }

    public func run() async throws {
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask {
                    do {
                        try await withTaskExecutorPreference(executor) { try await server.serve() }
                    } catch {
                        throw ServerStartError(reason: "\(error)")
                    }
                }
                if let address = try? await listeningAddress {
                    logger.info("listening", metadata: ["address": "\(address)"])
                }
            }
        } onGracefulShutdown: {
            logger.info("shutting down: no new calls, finishing the calls in flight")
            health.shutDown()
            server.beginGracefulShutdown()
        }
    }
}

/// What the service needs of a `GRPCServer`, whatever its transport.
private protocol GRPCServing: Sendable {
    func serve() async throws
    func beginGracefulShutdown()
}

extension GRPCServer: GRPCServing {}

/// The server could not start, most often because the port is taken.
public struct ServerStartError: Error, CustomStringConvertible {
    public var reason: String
    public var description: String { "cannot start the gRPC server: \(reason)" }
}

/// Answers `unavailable` to every call but health checks until the process first reports SERVING: a call that
/// arrives while a database is still late (or after shutdown began) gets "retry shortly", not an internal
/// error from a store whose schema does not exist yet. A database lost later is the handlers' error to report.
struct ReadinessGate: ServerInterceptor {
    let health: HealthService

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        guard context.descriptor.service == Grpc_Health_V1_Health.descriptor || health.takesCalls else {
            throw RPCError(code: .unavailable, message: "the service is starting or stopping; retry shortly")
        }
        return try await next(request, context)
    }
}

/// One debug line per call: the method, its outcome and how long the handler took. Off (and free) at the
/// default level; set `log.level` to `debug` in the configuration file to follow calls without a restart.
struct CallLog: ServerInterceptor {
    let logger: Logger

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        guard logger.logLevel <= .debug else { return try await next(request, context) }
        let start = ContinuousClock.now
        func log(_ outcome: String) {
            logger.debug(
                "call",
                metadata: [
                    "method": "\(context.descriptor.fullyQualifiedMethod)", "outcome": "\(outcome)",
                    "ms": "\((ContinuousClock.now - start).milliseconds)",
                ])
        }
        do {
            let response = try await next(request, context)
            switch response.accepted {
            case .success: log("ok")
            case .failure(let error): log("\(error.code)")
            }
            return response
        } catch let error as RPCError {
            log("\(error.code)")
            throw error
        }
    }
}

/// Binds `CallDeadline.current` for the handler from the call's `grpc-timeout`: bcrypt admission and MongoDB's
/// queue drop work whose caller has stopped waiting.
struct CallDeadlineInterceptor: ServerInterceptor {
    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        let timeout = request.metadata[stringValues: "grpc-timeout"].first(where: { _ in true }).flatMap(
            CallDeadline.timeout)
        guard let timeout else { return try await next(request, context) }
        return try await CallDeadline.$current.withValue(.now + timeout) { try await next(request, context) }
    }
}
