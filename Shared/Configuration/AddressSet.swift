import Foundation
import Glibc

/// IP addresses and networks, written `127.0.0.1`, `10.0.0.0/8`, `::1` or `fd00::/8`: the peers whose word about
/// a client's address is taken (a service's trusted gateways, the gateway's trusted proxies). Empty: nobody's.
/// An IPv4 address written as IPv6 (`::ffff:10.0.0.1`) is the IPv4 address.
public struct AddressSet: Sendable, Hashable, CustomStringConvertible {
    private struct Network: Sendable, Hashable {
        var bytes: [UInt8]
        var prefixLength: Int
    }

    private let networks: [Network]
    public let description: String

    public init() {
        networks = []
        description = "none"
    }

    /// - Throws: `SettingProblem` naming the first entry that is neither an address nor a network.
    public init(_ entries: [String]) throws(SettingProblem) {
        var networks: [Network] = []
        for entry in entries.map({ $0.trimmingCharacters(in: .whitespaces) }) where !entry.isEmpty {
            let parts = entry.split(separator: "/", maxSplits: 1).map(String.init)
            guard let bytes = Self.bytes(of: parts[0]) else {
                throw .other("\"\(entry)\" is not an IP address or network")
            }
            let bits = bytes.count * 8
            let prefixLength = parts.count == 2 ? Int(parts[1]) : bits
            guard let prefixLength, (0...bits).contains(prefixLength) else {
                throw .other("\"\(entry)\" has a prefix length outside 0 to \(bits)")
            }
            networks.append(Network(bytes: bytes, prefixLength: prefixLength))
        }
        self.networks = networks
        description = networks.isEmpty ? "none" : entries.joined(separator: ",")
    }

    public var isEmpty: Bool { networks.isEmpty }

    /// Whether `address` (an IP address, as text) is one of the set's or in one of its networks.
    public func contains(_ address: String) -> Bool {
        guard let bytes = Self.bytes(of: address) else { return false }
        return networks.contains { network in
            guard network.bytes.count == bytes.count else { return false }
            let whole = network.prefixLength / 8
            let rest = network.prefixLength % 8
            if network.bytes[..<whole] != bytes[..<whole] { return false }
            guard rest > 0 else { return true }
            let mask = UInt8(0xFF) << (8 - rest)
            return network.bytes[whole] & mask == bytes[whole] & mask
        }
    }

    /// Whether `text` is an IPv4 or IPv6 address.
    public static func isAddress(_ text: String) -> Bool { bytes(of: text) != nil }

    /// The address's bytes: 4 for IPv4 (an IPv4-mapped IPv6 address included), 16 for IPv6; `nil` for anything else.
    static func bytes(of text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        let bytes = withUnsafeBytes(of: &v6) { Array($0) }
        let mapped = bytes[..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xFF && bytes[11] == 0xFF
        return mapped ? Array(bytes[12...]) : bytes
    }
}

extension Setting where Value == AddressSet {
    /// A list of IP addresses and networks, comma-separated in text; none by default.
    public static func addresses(_ key: String, _ summary: String) -> Setting {
        Setting(key, default: AddressSet(), defaultText: "none", summary, show: { $0.description }) {
            raw throws(SettingProblem) in
            switch raw {
            case .list(let items): return try AddressSet(items)
            case .text(let text): return try AddressSet(text.split(separator: ",").map(String.init))
            case .number: throw .isNot("a list of IP addresses and networks")
            }
        }
    }
}
