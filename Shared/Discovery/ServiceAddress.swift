import GRPCCore
import GRPCNIOTransportHTTP2
import ShippyConfiguration

/// Parses the addresses that configuration and CLIs accept into gRPC targets:
/// `host:port`, `[ipv6]:port`, `dns:///name:port`, or a list of IPv4 `address:port`s separated by commas. A name
/// (with or without `dns:///`) becomes a `DiscoveredName`: every address it resolves to is a replica, and it is
/// looked up again while the client runs. A list names fixed replicas (processes on one machine, each on a port
/// of its own, where no name can tell them apart).
public enum ServiceAddress {
    /// - Throws: `ConfigurationError` naming `key` when the address has no valid port or host.
    public static func target(_ address: String, key: String) throws(ConfigurationError) -> any ResolvableTarget {
        let replicas = address.split(separator: ",", omittingEmptySubsequences: false)
        guard replicas.count == 1 else {
            var addresses: [SocketAddress.IPv4] = []
            for replica in replicas {
                guard let ipv4 = try target(String(replica), key: key) as? ResolvableTargets.IPv4 else {
                    throw ConfigurationError(
                        key: key, problem: "\"\(replica)\" in a list must be an IPv4 address:port (127.0.0.1:50052)")
                }
                addresses += ipv4.addresses
            }
            return ResolvableTargets.IPv4(addresses: addresses)
        }
        var rest = Substring(address)
        let isDNS = rest.hasPrefix("dns:///")
        if isDNS { rest = rest.dropFirst("dns:///".count) }
        guard let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]),
            (1...65535).contains(port)
        else {
            throw ConfigurationError(key: key, problem: "\"\(address)\" is not host:port (for example 127.0.0.1:50052)")
        }
        var host = String(rest[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") {
            host = String(host.dropFirst().dropLast())
            return .ipv6(address: host, port: port)
        }
        guard !host.isEmpty else {
            throw ConfigurationError(key: key, problem: "\"\(address)\" has no host")
        }
        if !isDNS && isIPv4(host) { return .ipv4(address: host, port: port) }
        return DiscoveredName(host: host, port: port)
    }

    private static func isIPv4(_ host: String) -> Bool {
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { UInt8($0) != nil }
    }
}
