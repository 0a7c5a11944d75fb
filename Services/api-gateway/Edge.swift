import HTTPTypes
import Hummingbird
import NIOCore
import ShippyConfiguration
import ShippyDomain
import ShippyRuntime
import Synchronization

/// A request's context: Hummingbird's, the TCP peer's address, from which `ClientAddressMiddleware` finds the
/// client and `OutsideTraceContextMiddleware` decides whose trace context to take, and the connection, which
/// `BodyMiddleware` closes after a body too slow to wait for.
struct GatewayContext: RequestContext, RemoteAddressRequestContext {
    var coreContext: CoreRequestContextStorage
    let remoteAddress: SocketAddress?
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
        channel = source.channel
    }
}

/// What every response passes through: errors become problems, and the security headers are set on all of them
/// (a strict Content-Security-Policy: the web app runs only its own module scripts, no inline script or style).
struct EdgeMiddleware: RouterMiddleware {
    typealias Context = GatewayContext
    /// `Strict-Transport-Security` for every answer, when the gateway serves HTTPS.
    var strictTransportSecurity: String?

    static let securityHeaders: HTTPFields = [
        .contentSecurityPolicy:
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
            + "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        .xContentTypeOptions: "nosniff",
        .init("Referrer-Policy")!: "no-referrer",
        .init("X-Frame-Options")!: "DENY",
        .init("Cross-Origin-Opener-Policy")!: "same-origin",
    ]

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            let problem = Problem.of(error)
            // The client gets a sentence without internals; the log keeps what happened, and never the request
            // (a ServerError's description holds its headers, the bearer token among them).
            if problem.status.kind == .serverError {
                context.logger.warning(
                    "request failed",
                    metadata: ["status": "\(problem.status.code)", "error": "\(Problem.cause(of: error))"])
            }
            response = problem.response()
        }
        response.headers.append(contentsOf: Self.securityHeaders)
        if let strictTransportSecurity { response.headers[.strictTransportSecurity] = strictTransportSecurity }
        if request.uri.path.hasPrefix("/v1/") { response.headers[.cacheControl] = "no-store" }
        return response
    }
}

/// Request bodies of at most `limit` bytes, in full within `readTimeout`: a larger one is a 413 before any of it is
/// decoded. A body still arriving after `readTimeout` is a 408, and its connection is closed once the answer is
/// written: the idle timeout alone would let a client that trickles a body (a byte within each idle period) hold
/// its connection and a task for ever.
struct BodyMiddleware: RouterMiddleware {
    typealias Context = GatewayContext
    let limit: Int
    let readTimeout: Duration

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let tooLarge = Problem(.contentTooLarge, "the body is larger than \(limit / 1024) KiB")
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit { throw tooLarge }
        let body = request.body
        let collected = try await withThrowingTaskGroup(of: ByteBuffer?.self) { group in
            group.addTask {
                do {
                    return try await body.collect(upTo: limit)
                } catch is CancellationError {
                    return nil
                } catch {
                    throw tooLarge
                }
            }
            group.addTask {
                try? await Task.sleep(for: readTimeout)
                return nil
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
        guard let collected else {
            // Hummingbird closes a connection told to quiesce once its response in flight is written.
            let channel = context.channel
            channel.eventLoop.execute { channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent()) }
            throw Problem(.requestTimeout, "the body did not arrive within \(readTimeout.wholeSecondsRoundedUp) s")
        }
        var request = request
        request.body = .init(buffer: collected)
        return try await next(request, context)
    }
}

/// The client a request is from (`ClientAddress.current` while it is handled, and sent on to the services): the
/// TCP peer, or behind one of the trusted proxies the address their `Forwarded`/`X-Forwarded-For` names.
struct ClientAddressMiddleware: RouterMiddleware {
    typealias Context = GatewayContext
    let trustedProxies: AddressSet

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let peer = context.remoteAddress?.ipAddress ?? "unknown"
        let client = ClientAddress.behindProxies(
            peer: peer, forwarded: request.headers[values: Self.forwarded],
            forwardedFor: request.headers[values: Self.forwardedFor], trusted: trustedProxies)
        return try await ClientAddress.$current.withValue(client) { try await next(request, context) }
    }

    static let forwarded = HTTPField.Name("Forwarded")!
    static let forwardedFor = HTTPField.Name("X-Forwarded-For")!
}

/// Trace context is taken only from inside the system: from a peer that is not a trusted proxy, `traceparent`,
/// `tracestate` and `baggage` are dropped before the request's span starts, so the trace begins at the gateway
/// and Shippy's own sampler decides it. Otherwise anyone on the internet could choose our trace ids, force every
/// request of theirs to be sampled (the cost is ours), or turn tracing off for theirs.
struct OutsideTraceContextMiddleware: RouterMiddleware {
    typealias Context = GatewayContext
    let trustedProxies: AddressSet

    static let fields = ["traceparent", "tracestate", "baggage"].map { HTTPField.Name($0)! }

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        guard !trustedProxies.contains(context.remoteAddress?.ipAddress ?? ""),
            Self.fields.contains(where: { request.headers[$0] != nil })
        else { return try await next(request, context) }
        var head = request.head
        for field in Self.fields { head.headerFields[field] = nil }
        return try await next(Request(head: head, body: request.body), context)
    }
}

/// Sign-ups and log-ins per client address (`ClientAddress`): `limit` a minute, in bursts of up to `limit` (a
/// token bucket per address). Over it, a 429 with `Retry-After`. A path is compared as the router matches it, by
/// its components, so `/v1/sessions/` counts as `/v1/sessions`.
struct RateLimitMiddleware: RouterMiddleware {
    typealias Context = GatewayContext
    let limiter: RateLimiter
    let paths: Set<String>

    init(limiter: RateLimiter, paths: Set<String>) {
        self.limiter = limiter
        self.paths = Set(paths.map(Self.route))
    }

    /// The path's non-empty components, joined: what the router matches.
    static func route(_ path: String) -> String { path.split(separator: "/").joined(separator: "/") }

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        guard request.method == .post, paths.contains(Self.route(request.uri.path)) else {
            return try await next(request, context)
        }
        if let wait = limiter.admit(ClientAddress.current ?? "unknown") {
            throw Problem(
                .tooManyRequests, "too many sign-ups and logins from your address; retry in \(wait) s",
                retryAfter: wait)
        }
        return try await next(request, context)
    }
}

/// Token buckets by key, refilled at `perMinute` a minute. Memory stays bounded: at `maximumKeys` the buckets
/// that have refilled are forgotten (a full bucket is the same as none).
final class RateLimiter: Sendable {
    private struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    let perMinute: Int
    private let maximumKeys = 100_000
    private let buckets = Mutex<[String: Bucket]>([:])

    init(perMinute: Int) { self.perMinute = perMinute }

    /// `nil` when a request from `key` may go ahead now; otherwise the seconds until it may.
    func admit(_ key: String, now: ContinuousClock.Instant = .now) -> Int? {
        let capacity = Double(perMinute)
        let perSecond = capacity / 60
        return buckets.withLock { buckets in
            if buckets.count >= maximumKeys {
                buckets = buckets.filter { _, bucket in
                    bucket.tokens + perSecond * Double((now - bucket.updated).components.seconds) < capacity
                }
            }
            var bucket = buckets[key] ?? Bucket(tokens: capacity, updated: now)
            let elapsed = now - bucket.updated
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            bucket.tokens = min(capacity, bucket.tokens + seconds * perSecond)
            bucket.updated = now
            defer { buckets[key] = bucket }
            guard bucket.tokens >= 1 else { return max(1, Int(((1 - bucket.tokens) / perSecond).rounded(.up))) }
            bucket.tokens -= 1
            return nil
        }
    }
}

/// A method a path does not have: `405 Method Not Allowed` with `Allow`, where the router alone would answer 404
/// as for a path that does not exist. HEAD goes where GET does.
struct MethodNotAllowedMiddleware: RouterMiddleware {
    typealias Context = GatewayContext
    let routes: RouteMethods

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        guard var allowed = routes.methods(of: request.uri.path) else { return try await next(request, context) }
        if allowed.contains(.get) { allowed.insert(.head) }
        guard !allowed.contains(request.method) else { return try await next(request, context) }
        let allow = allowed.map(\.rawValue).sorted().joined(separator: ", ")
        var problem = Problem(.methodNotAllowed, "\(request.uri.path) takes \(allow), not \(request.method)")
        problem.headers[.allow] = allow
        throw problem
    }
}

/// Each route's methods, by the route's template (`/v1/consignments/{id}`), matched by path components as the
/// router matches them.
struct RouteMethods: Sendable {
    private var routes: [(components: [Substring], methods: Set<HTTPRequest.Method>)] = []

    mutating func add(_ method: HTTPRequest.Method, _ template: String) {
        let components = template.split(separator: "/")
        if let index = routes.firstIndex(where: { $0.components == components }) {
            routes[index].methods.insert(method)
        } else {
            routes.append((components, [method]))
        }
    }

    /// The methods of the route `path` matches; `nil` when it matches none.
    func methods(of path: String) -> Set<HTTPRequest.Method>? {
        let components = path.split(separator: "/")
        return routes.first { route in
            route.components.count == components.count
                && zip(route.components, components).allSatisfy { template, component in
                    template == component || (template.hasPrefix("{") && template.hasSuffix("}"))
                }
        }?.methods
    }
}

/// An `Idempotency-Key` header is held to its rule as sent, before the generated code percent-decodes it (which
/// would make `%41` an `A`): one that breaks it is a 400, on any route.
struct IdempotencyKeyMiddleware: RouterMiddleware {
    typealias Context = GatewayContext
    static let header = HTTPField.Name("Idempotency-Key")!

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let keys = request.headers[values: Self.header]
        guard !keys.isEmpty else { return try await next(request, context) }
        do throws(ShippyError) {
            guard keys.count == 1 else { throw .invalidArgument("send one idempotency-key, not several") }
            try IdempotencyKeyRule.check(keys[0])
        } catch {
            throw Problem(.badRequest, "the Idempotency-Key header is not valid: \(error.message)")
        }
        return try await next(request, context)
    }
}
