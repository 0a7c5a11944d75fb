import GRPCCore
import GRPCNIOTransportHTTP2
import NIOCore
import Synchronization

/// The transport of every client of a Shippy service: HTTP/2 connections to every address of a name, calls spread
/// round-robin over the ready ones, a dead peer found within seconds; and, when configured, a
/// share of calls sent to a canary name and a preference for the replicas of the client's own zone — the
/// selector filters go-micro had.
///
/// A call that cannot even start on the canary or the zone (none of their replicas is ready) starts on the
/// main name instead: it never reached a server, so moving it is safe for any method. Retries of calls that did
/// start follow the service config's policies (`RetryPolicies`).
public struct ServiceTransport: ClientTransport {
    public typealias Bytes = GRPCNIOTransportBytes

    /// On connections to a name's replicas, pings after this long without a ping; a replica whose process does not
    /// answer within `keepaliveTimeout` (a host cut off, a process hung) is dropped, and the calls waiting on it
    /// are retried on the others. Not on a fixed IP address: with no other replica to turn to, a ping only adds
    /// work, and under the end-to-end tests' saturation (two cores, dozens of processes, 200 concurrent
    /// bookings) pinged connections saw calls wait out their deadlines (see docs/many-machines.md).
    public static let keepaliveTime: Duration = .seconds(2)
    public static let keepaliveTimeout: Duration = .seconds(2)

    private let main: HTTP2ClientTransport.Posix
    private let zone: HTTP2ClientTransport.Posix?
    private let canary: HTTP2ClientTransport.Posix?
    private let canarySplit: CanarySplit

    /// - Parameters:
    ///   - main: where the service is (`ServiceAddress.target`).
    ///   - zone: the same service's replicas in this client's zone, tried first.
    ///   - canary: a second version of the service, which gets `canaryShare()` of the calls (0…1, read per call
    ///     so that a live setting can change it).
    ///   - serviceConfig: per-method timeouts and retry policies; the balancing is always round-robin.
    ///   - security: plaintext, or mutual TLS with this client's certificate (`TLSFiles.client`, or a service's
    ///     rotating one).
    public init(
        main: any ResolvableTarget, zone: (any ResolvableTarget)? = nil, canary: (any ResolvableTarget)? = nil,
        canaryShare: @escaping @Sendable () -> Double = { 0 }, serviceConfig: ServiceConfig = ServiceConfig(),
        security: HTTP2ClientTransport.Posix.TransportSecurity = .plaintext
    ) throws {
        var serviceConfig = serviceConfig
        serviceConfig.loadBalancingConfig = [.roundRobin]
        self.main = try Self.connections(to: main, security: security, serviceConfig: serviceConfig)
        self.zone = try zone.map { try Self.connections(to: $0, security: security, serviceConfig: serviceConfig) }
        self.canary = try canary.map {
            try Self.connections(to: $0, security: security, serviceConfig: serviceConfig)
        }
        self.canarySplit = CanarySplit(share: canaryShare)
    }

    private static func connections(
        to target: any ResolvableTarget, security: HTTP2ClientTransport.Posix.TransportSecurity,
        serviceConfig: ServiceConfig
    ) throws -> HTTP2ClientTransport.Posix {
        var config = HTTP2ClientTransport.Posix.Config.defaults
        // Reconnect within a second of the peer coming back (the default backoff grows to two minutes).
        config.backoff = .init(initial: .milliseconds(100), max: .seconds(1), multiplier: 1.6, jitter: 0.2)
        if let list = target as? ResolvableTargets.IPv4, list.addresses.count > 1 {
            // Fixed replicas: a hung one is dropped as on a name, the others take its calls.
            config.connection.keepalive = .init(
                time: keepaliveTime, timeout: keepaliveTimeout, allowWithoutCalls: true)
        }
        if let name = target as? DiscoveredName {
            config.connection.keepalive = .init(
                time: keepaliveTime, timeout: keepaliveTimeout, allowWithoutCalls: true)
            // A connection that closes (a replica killed, drained or moved) is a sign the name changed.
            config.channelDebuggingCallbacks.onCreateTCPConnection = { channel in
                channel.closeFuture.whenComplete { _ in name.lookUpSoon.raise() }
                return channel.eventLoop.makeSucceededVoidFuture()
            }
        }
        var resolvers = NameResolverRegistry.defaults
        resolvers.registerFactory(DiscoveredNameResolvers())
        return try HTTP2ClientTransport.Posix(
            target: target, transportSecurity: security, config: config, resolverRegistry: resolvers,
            serviceConfig: serviceConfig)
    }

    public var retryThrottle: RetryThrottle? { main.retryThrottle }

    public func config(forMethod descriptor: MethodDescriptor) -> MethodConfig? {
        main.config(forMethod: descriptor)
    }

    /// Every name this transport connects to.
    private var transports: [HTTP2ClientTransport.Posix] { [main] + [zone, canary].compactMap { $0 } }

    public func connect() async throws {
        try await withThrowingDiscardingTaskGroup { group in
            for transport in transports { group.addTask { try await transport.connect() } }
        }
    }

    public func beginGracefulShutdown() {
        for transport in transports { transport.beginGracefulShutdown() }
    }

    public func withStream<T: Sendable>(
        descriptor: MethodDescriptor,
        options: CallOptions,
        _ closure: (RPCStream<Inbound, Outbound>, ClientContext) async throws -> T
    ) async throws -> T {
        if let first = canary != nil && canarySplit.takesCall() ? canary : zone {
            var fallible = options
            fallible.waitForReady = false
            // When none of its replicas is ready the call never left, so the main name takes it.
            if case .answered(let result) = try await open(first, descriptor, fallible, closure) { return result }
        }
        switch try await open(main, descriptor, options, closure) {
        case .answered(let result):
            return result
        case .notOpened(let error):
            // Answered as a server answers, with the status: grpc-swift's retry executor, given a thrown error here
            // instead, reports it only once the call's deadline has passed (it waits for its timer); so answered,
            // the policy retries or gives up at once.
            return try await closure(
                .failed(descriptor, error), ClientContext(descriptor: descriptor, remotePeer: "none", localPeer: "none")
            )
        }
    }

    private enum Opened<T> {
        case answered(T)
        /// No stream could be made (no replica ready, the name unresolved): the call never reached a server.
        case notOpened(RPCError)
    }

    private func open<T: Sendable>(
        _ transport: HTTP2ClientTransport.Posix, _ descriptor: MethodDescriptor, _ options: CallOptions,
        _ closure: (RPCStream<Inbound, Outbound>, ClientContext) async throws -> T
    ) async throws -> Opened<T> {
        var started = false
        do {
            return .answered(
                try await transport.withStream(descriptor: descriptor, options: options) { stream, context in
                    started = true
                    return try await closure(stream, context)
                })
        } catch let error as RPCError where !started {
            return .notOpened(error)
        }
    }
}

extension RPCStream
where
    Inbound == RPCAsyncSequence<RPCResponsePart<GRPCNIOTransportBytes>, any Error>,
    Outbound == RPCWriter<RPCRequestPart<GRPCNIOTransportBytes>>.Closable
{
    /// A stream that was never opened: its only response is `error` as a status, and what is written is dropped.
    fileprivate static func failed(_ descriptor: MethodDescriptor, _ error: RPCError) -> Self {
        let status = Status(code: Status.Code(error.code), message: error.message)
        let responses = AsyncThrowingStream<RPCResponsePart<GRPCNIOTransportBytes>, any Error> { continuation in
            continuation.yield(.status(status, error.metadata))
            continuation.finish()
        }
        return RPCStream(
            descriptor: descriptor, inbound: RPCAsyncSequence(wrapping: responses),
            outbound: RPCWriter.Closable(wrapping: DroppingWriter()))
    }
}

/// Takes whatever a call writes to a stream that was never opened.
private struct DroppingWriter: ClosableRPCWriterProtocol {
    func write(_ element: RPCRequestPart<GRPCNIOTransportBytes>) async throws {}
    func write(contentsOf elements: some Sequence<RPCRequestPart<GRPCNIOTransportBytes>>) async throws {}
    func finish() async {}
    func finish(throwing error: any Error) async {}
}

/// Which calls go to the canary. The credit grows by the share with each call and pays one call out when it
/// reaches a whole call, so that the share holds exactly over any run of calls rather than on average. Counted in
/// ten-thousandths of a call, so that 10 % is exactly 1 call in 10 (a sum of 0.1s drifts in binary).
final class CanarySplit: Sendable {
    private static let wholeCall = 10_000
    let share: @Sendable () -> Double
    private let credit = Mutex<Int>(0)

    init(share: @escaping @Sendable () -> Double) { self.share = share }

    func takesCall() -> Bool {
        let units = Int((min(max(share(), 0), 1) * Double(Self.wholeCall)).rounded())
        return credit.withLock { credit in
            credit += units
            guard credit >= Self.wholeCall else { return false }
            credit -= Self.wholeCall
            return true
        }
    }
}
