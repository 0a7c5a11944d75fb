import Dispatch
import GRPCCore
import GRPCNIOTransportCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A name that resolves to every replica of a service (`dns:///vessel:50052`): a compose service scaled up, a
/// Kubernetes headless Service. Unlike grpc-swift's own DNS target, each address is its own endpoint, so a
/// round-robin balancer spreads calls over all of them; and the name is looked up again every `refresh` and as
/// soon as a connection to one of them closes, so replicas that come later get calls and those gone are dropped.
public struct DiscoveredName: ResolvableTarget, Sendable {
    /// How often the name is looked up again while nothing fails.
    public static let refreshInterval: Duration = .seconds(5)

    public let host: String
    public let port: Int
    public let refresh: Duration
    /// Raised when a connection closes; the resolver then looks the name up again, a second after the last look-up
    /// at the soonest.
    public let lookUpSoon = LookUpSignal()

    public init(host: String, port: Int, refresh: Duration = Self.refreshInterval) {
        self.host = host
        self.port = port
        self.refresh = refresh
    }
}

/// A flag the resolver polls between look-ups.
public final class LookUpSignal: Sendable {
    private let raised = Atomic<Bool>(false)

    public func raise() { raised.store(true, ordering: .relaxed) }

    func take() -> Bool { raised.exchange(false, ordering: .relaxed) }
}

/// Registers with a `NameResolverRegistry` so that transports resolve `DiscoveredName`s.
public struct DiscoveredNameResolvers: NameResolverFactory, Sendable {
    public typealias Target = DiscoveredName

    public init() {}

    public func resolver(for target: DiscoveredName) -> NameResolver {
        NameResolver(
            names: RPCAsyncSequence(wrapping: Lookups(target: target)), updateMode: .push,
            authority: "\(target.host):\(target.port)")
    }
}

/// The endless sequence of the name's address sets: the first at once, then one per look-up, changed or not.
/// Even an unchanged set matters: the balancer drops a replica that sent GOAWAY (it drains or restarts), and
/// only a new result brings its address back. A look-up that fails or finds nothing after a first success keeps
/// the last set (a DNS server restarting must not empty the balancer); before any success it throws, and the
/// channel backs off and asks again.
struct Lookups: AsyncSequence, Sendable {
    typealias Element = NameResolutionResult
    let target: DiscoveredName

    func makeAsyncIterator() -> Iterator { Iterator(target: target) }

    struct Iterator: AsyncIteratorProtocol {
        let target: DiscoveredName
        var resolvedOnce = false

        init(target: DiscoveredName) { self.target = target }

        mutating func next() async throws -> NameResolutionResult? {
            while true {
                if resolvedOnce { try await waitForNextLookUp() }
                let addresses: [SocketAddress]
                do {
                    addresses = try await lookUp(host: target.host, port: target.port)
                } catch {
                    if !resolvedOnce || error is CancellationError { throw error }
                    continue
                }
                resolvedOnce = true
                return NameResolutionResult(endpoints: addresses.map { Endpoint(addresses: [$0]) }, serviceConfig: nil)
            }
        }

        /// Sleeps until the refresh interval ends or a closed connection asks for a look-up (after at least a
        /// second, so that a replica that keeps failing does not turn into a stream of DNS queries).
        private func waitForNextLookUp() async throws {
            let start = ContinuousClock.now
            while ContinuousClock.now - start < target.refresh {
                try await Task.sleep(for: .milliseconds(200))
                if ContinuousClock.now - start >= .seconds(1), target.lookUpSoon.take() { return }
            }
            _ = target.lookUpSoon.take()
        }
    }
}

/// The name's TCP addresses through the system resolver (`getaddrinfo`, so /etc/hosts and resolv.conf apply),
/// off the cooperative threads since it blocks; in a stable order.
func lookUp(host: String, port: Int) async throws -> [SocketAddress] {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async {
            continuation.resume(with: Result { try lookUpBlocking(host: host, port: port) })
        }
    }
}

private func lookUpBlocking(host: String, port: Int) throws -> [SocketAddress] {
    var hints = addrinfo()
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    hints.ai_protocol = Int32(IPPROTO_TCP)
    var list: UnsafeMutablePointer<addrinfo>?
    let status = getaddrinfo(host, String(port), &hints, &list)
    defer { if let list { freeaddrinfo(list) } }
    guard status == 0 else {
        throw RPCError(
            code: .unavailable, message: "cannot resolve \(host): \(String(cString: gai_strerror(status)))")
    }
    var addresses: Set<SocketAddress> = []
    var entry = list
    while let info = entry?.pointee {
        entry = info.ai_next
        guard let sockaddr = info.ai_addr else { continue }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        switch info.ai_family {
        case AF_INET:
            var address = sockaddr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
            guard inet_ntop(AF_INET, &address, &text, socklen_t(text.count)) != nil else { continue }
            addresses.insert(.ipv4(host: String(cString: text), port: port))
        case AF_INET6:
            var address = sockaddr.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
            guard inet_ntop(AF_INET6, &address, &text, socklen_t(text.count)) != nil else { continue }
            addresses.insert(.ipv6(host: String(cString: text), port: port))
        default:
            continue
        }
    }
    guard !addresses.isEmpty else { throw RPCError(code: .unavailable, message: "\(host) has no address") }
    return addresses.sorted { "\($0)" < "\($1)" }
}
