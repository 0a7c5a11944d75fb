import Logging
import Metrics
import NIOCore
import NIOSSL
import NIOTLS
import Synchronization

/// The TLS handshakes a server refused: plaintext, no certificate, a certificate from another authority or out of
/// its validity, garbage, a peer gone mid-handshake. Each refusal ends its own connection only; it is counted in
/// `tls_handshake_refusals_total` by reason and logged at most once per peer address and minute (the next line
/// says how many went unlogged), so that a scanner cannot flood the log. A line holds the peer's address, the
/// reason and BoringSSL's error, never anything of a certificate or key.
public final class HandshakeRefusals: Sendable {
    /// Why a handshake was refused (the metric's `reason` label).
    public enum Reason: String, Sendable, CaseIterable {
        /// The peer does not speak TLS: a plaintext client, HTTP/1, garbage.
        case notTLS = "not_tls"
        /// The peer presented no certificate.
        case noCertificate = "no_certificate"
        /// The peer's certificate did not verify: another authority, expired, not yet valid.
        case untrustedCertificate = "untrusted_certificate"
        /// The peer refused this server's certificate (it sent an alert).
        case refusedByPeer = "refused_by_peer"
        /// The peer closed the connection before the handshake ended.
        case closed
        /// Anything else that broke the handshake.
        case malformed

        /// The reason BoringSSL's error names (its reason codes are the stable part of its messages).
        init(_ error: NIOSSLError) {
            let text = "\(error)"
            func names(_ codes: String...) -> Bool { codes.contains { text.contains($0) } }
            if names("EOF during") {
                self = .closed
            } else if names("WRONG_VERSION_NUMBER", "HTTP_REQUEST", "HTTPS_PROXY_REQUEST") {
                self = .notTLS
            } else if names("PEER_DID_NOT_RETURN_A_CERTIFICATE", "CERTIFICATE_REQUIRED") {
                self = .noCertificate
            } else if names("CERTIFICATE_VERIFY_FAILED") {
                self = .untrustedCertificate
            } else if names("ALERT") {
                self = .refusedByPeer
            } else {
                self = .malformed
            }
        }
    }

    /// How long a peer's refusals share one log line.
    static let window = Duration.seconds(60)
    /// The peers remembered for the window; refusals from more peers than this within a minute are counted, not
    /// logged, so that the memory is bounded whatever the number of addresses.
    static let peersRemembered = 4096

    private let logger: Logger
    private let counters: [Reason: Counter]
    private let windows = Mutex<[String: Window]>([:])

    private struct Window {
        var opened: ContinuousClock.Instant
        var unlogged: Int
    }

    public init(logger: Logger) {
        self.logger = logger
        counters = Dictionary(
            uniqueKeysWithValues: Reason.allCases.map {
                ($0, Counter(label: "tls_handshake_refusals_total", dimensions: [("reason", $0.rawValue)]))
            })
    }

    /// Watches the handshake of an accepted connection (the gRPC transport's accept callback, which runs on the
    /// connection's event loop, after the TLS handler is in its pipeline).
    public func watch(_ channel: any Channel) -> EventLoopFuture<Void> {
        channel.eventLoop.makeCompletedFuture {
            let operations = channel.pipeline.syncOperations
            let tls = try operations.handler(type: NIOSSLServerHandler.self)
            // The peer's address now: a channel closed mid-handshake no longer has it.
            let peer = channel.remoteAddress?.ipAddress ?? "unknown"
            try operations.addHandler(HandshakeWatch(refusals: self, peer: peer), position: .after(tls))
        }
    }

    /// Counts a refused handshake and logs it unless its peer's window already has a line.
    func record(_ error: NIOSSLError, peer: String, now: ContinuousClock.Instant = .now) {
        let reason = Reason(error)
        counters[reason]?.increment()
        guard let unlogged = opensWindow(for: peer, now: now) else { return }
        var metadata: Logger.Metadata = ["peer": "\(peer)", "reason": "\(reason.rawValue)", "error": "\(error)"]
        if unlogged > 0 { metadata["unlogged_since_last"] = "\(unlogged)" }
        logger.warning("TLS handshake refused", metadata: metadata)
    }

    /// Whether a refusal from `peer` gets a log line now (then how many went unlogged in its previous window), or
    /// `nil` when its window already has one.
    func opensWindow(for peer: String, now: ContinuousClock.Instant) -> Int? {
        windows.withLock { windows in
            if var window = windows[peer], now - window.opened < Self.window {
                window.unlogged += 1
                windows[peer] = window
                return nil
            }
            let unlogged = windows.removeValue(forKey: peer)?.unlogged ?? 0
            if windows.count >= Self.peersRemembered {
                windows = windows.filter { now - $0.value.opened < Self.window }
                guard windows.count < Self.peersRemembered else { return nil }
            }
            windows[peer] = Window(opened: now, unlogged: 0)
            return unlogged
        }
    }
}

/// One connection's handshake, seen from just behind the TLS handler: a refusal is recorded once, and the watch
/// leaves the pipeline when the handshake completes, so that calls pay nothing for it.
private final class HandshakeWatch: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    private let refusals: HandshakeRefusals
    private let peer: String

    init(refusals: HandshakeRefusals, peer: String) {
        self.refusals = refusals
        self.peer = peer
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event {
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? NIOSSLError, case .handshakeFailed = error {
            refusals.record(error, peer: peer)
        }
        context.fireErrorCaught(error)
    }
}
