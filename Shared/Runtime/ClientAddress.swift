import Foundation
import GRPCCore
import ShippyConfiguration

/// Who the client of a call is, by address: what login throttling, the gateway's rate limit and bcrypt's fair
/// queue count. Behind the gateway every call's peer is the gateway, so the gateway sends the address it served
/// (`metadataKey`), and a service takes that word only from the gateway: over TLS, from a caller whose certificate
/// names it (`gatewayIdentity`); in plaintext, from a peer in its trusted gateways. From anyone else the peer itself
/// is the client.
public enum ClientAddress {
    /// The metadata the gateway sends the client's address in.
    public static let metadataKey = "shippy-client-address"

    /// The identity (`CallerIdentity`) of the gateway's certificate.
    public static let gatewayIdentity = "api-gateway"

    /// The current call's client address: set by `ClientAddressInterceptor` on a server, by the gateway's edge
    /// for a request.
    @TaskLocal public static var current: String?

    /// The client of the call `context` serves: `current` when an interceptor bound it, else the peer's address.
    public static func of(_ context: ServerContext) -> String { current ?? host(ofPeer: context.remotePeer) }

    /// The address of a gRPC peer (`ipv4:127.0.0.1:5000` → `127.0.0.1`, `ipv6:[::1]:5000` → `::1`).
    public static func host(ofPeer peer: String) -> String {
        var text = Substring(peer)
        for scheme in ["ipv4:", "ipv6:"] where text.hasPrefix(scheme) { text = text.dropFirst(scheme.count) }
        if text.hasPrefix("["), let end = text.firstIndex(of: "]") {
            return String(text[text.index(after: text.startIndex)..<end])
        }
        if text.filter({ $0 == ":" }).count == 1, let colon = text.lastIndex(of: ":") { return String(text[..<colon]) }
        return String(text)
    }

    /// The client of a call from `peer` that says `sent`: `sent` when the caller is the gateway and it is an
    /// address, else the peer. Over TLS (`identity` is the caller's certificate's) the gateway is who the
    /// certificate names, wherever it calls from, and `trusted` is not asked; in plaintext it is a peer in `trusted`.
    public static func resolve(peer: String, identity: String? = nil, sent: String?, trusted: AddressSet) -> String {
        let isGateway = identity.map { $0 == gatewayIdentity } ?? trusted.contains(peer)
        guard let sent, isGateway, AddressSet.isAddress(sent) else { return peer }
        return sent
    }

    /// The client behind a request from `peer` through proxies (RFC 7239 `Forwarded`'s `for=`, else
    /// `X-Forwarded-For`): from the nearest hop back, the first address that is not a trusted proxy. A peer that
    /// is not a trusted proxy is the client, whatever its headers say; a hop that is not an address ends the walk.
    public static func behindProxies(
        peer: String, forwarded: [String], forwardedFor: [String], trusted: AddressSet
    ) -> String {
        guard trusted.contains(peer) else { return peer }
        let hops = forwarded.isEmpty ? list(forwardedFor) : list(forwarded).compactMap(forValue)
        var client = peer
        for hop in hops.reversed() {
            guard AddressSet.isAddress(hop) else { break }
            client = hop
            if !trusted.contains(hop) { break }
        }
        return client
    }

    /// The comma-separated items of a header's values, trimmed.
    private static func list(_ values: [String]) -> [String] {
        values.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
    }

    /// The address of a `Forwarded` element's `for=` (`for=192.0.2.60`, `for="[2001:db8::1]:4711"`).
    private static func forValue(_ element: String) -> String? {
        for pair in element.split(separator: ";") {
            let parts = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, parts[0].lowercased() == "for" else { continue }
            let value = parts[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            return host(ofPeer: value)
        }
        return nil
    }
}

/// Binds `ClientAddress.current` for the handler: the gateway's word when the call comes from the gateway (by its
/// certificate over TLS, as `CallerIdentityInterceptor` bound it; else from one of `trustedGateways`), else the peer.
public struct ClientAddressInterceptor: ServerInterceptor {
    let trustedGateways: AddressSet

    public init(trustedGateways: AddressSet) { self.trustedGateways = trustedGateways }

    public func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        let sent = request.metadata[stringValues: ClientAddress.metadataKey].first(where: { _ in true })
        let client = ClientAddress.resolve(
            peer: ClientAddress.host(ofPeer: context.remotePeer), identity: CallerIdentity.current, sent: sent,
            trusted: trustedGateways)
        return try await ClientAddress.$current.withValue(client) { try await next(request, context) }
    }
}

/// On the gateway's calls: sends `ClientAddress.current`, the client it serves, to the service.
public struct ClientAddressForwarding: ClientInterceptor {
    public init() {}

    public func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingClientRequest<Input>,
        context: ClientContext,
        next: (StreamingClientRequest<Input>, ClientContext) async throws -> StreamingClientResponse<Output>
    ) async throws -> StreamingClientResponse<Output> {
        guard let client = ClientAddress.current else { return try await next(request, context) }
        var request = request
        request.metadata.replaceOrAddString(client, forKey: ClientAddress.metadataKey)
        return try await next(request, context)
    }
}
