import Foundation
import GRPCNIOTransportHTTP2
import Logging
import Metrics
import NIOCertificateReloading
import NIOSSL
import ServiceLifecycle
import ShippyConfiguration
import ShippyDiscovery
import Synchronization
import X509

/// A service's certificate and key (`TLSFiles`), re-read every `interval` while it runs, so that a certificate is
/// rotated by replacing its files: each new connection, served or dialled, uses the pair read last; calls in flight
/// finish on their connection's. A pair that is not valid now (expired, not yet valid) or does not load is refused
/// with an error in the log, and the previous one stays. The leaf's expiry is the gauge
/// `tls_certificate_expiry_timestamp_seconds` (the alert `ShippyCertificateExpiresSoon` reads it). The authorities
/// (`TLS_CA`) are read at start.
public struct CertificateRotation: CertificateReloader, Service {
    public let files: TLSFiles
    /// The server's security: the pair in use, and a client certificate required from one of the authorities.
    public private(set) var server: HTTP2ServerTransport.Posix.TransportSecurity = .plaintext
    /// A client's security: the pair in use, and the server's certificate verified against the authorities and the
    /// address dialled.
    public private(set) var client: HTTP2ClientTransport.Posix.TransportSecurity = .plaintext
    private let reloader: TimedCertificateReloader
    private let accepted: Accepted

    /// - Throws: `ConfigurationError` naming `TLS_CERTIFICATE` when the pair does not load or is not valid now.
    public init(files: TLSFiles, interval: Duration = .seconds(5), logger: Logger) throws(ConfigurationError) {
        let accepted = Accepted()
        let expiry = Gauge(label: "tls_certificate_expiry_timestamp_seconds")
        let configuration = TimedCertificateReloader.Configuration(
            refreshInterval: interval,
            certificateSource: .init(location: .file(path: files.certificate), format: .pem),
            privateKeySource: .init(location: .file(path: files.key), format: .pem)
        ) {
            $0.onCertificateLoaded = { loaded in
                guard let leaf = loaded.currentX509CertificateChain.first else { return }
                let metadata: Logger.Metadata = [
                    "certificate": "\(files.certificate)", "subject": "\(leaf.subject)",
                    "valid_from": "\(leaf.notValidBefore)", "valid_until": "\(leaf.notValidAfter)",
                ]
                guard let problem = Self.problem(with: leaf) else {
                    var pair = NIOSSLContextConfigurationOverride()
                    pair.certificateChain = loaded.currentCertificateChain
                    pair.privateKey = loaded.currentPrivateKey
                    if accepted.take(leaf, pair) { logger.notice("certificate loaded", metadata: metadata) }
                    expiry.record(leaf.notValidAfter.timeIntervalSince1970)
                    return
                }
                if accepted.refuse(leaf) {
                    logger.error("certificate refused, the previous one stays: \(problem)", metadata: metadata)
                }
            }
            $0.onCertificateLoadFailed = { failure in
                if accepted.refuse(nil) {
                    logger.error(
                        "certificate not loaded, the previous one stays: \(failure.error)",
                        metadata: ["certificate": "\(files.certificate)", "key": "\(files.key)"])
                }
            }
        }
        let setting = TLSFiles.certificateSetting
        do {
            reloader = try TimedCertificateReloader.makeReloaderValidatingSources(configuration: configuration)
        } catch {
            throw ConfigurationError(
                key: setting.environmentName, flag: setting.flagName, problem: "cannot load it with TLS_KEY: \(error)")
        }
        guard accepted.pair != nil else {
            let problem = accepted.lastRefused.flatMap { Self.problem(with: $0) } ?? "it is not valid now"
            throw ConfigurationError(key: setting.environmentName, flag: setting.flagName, problem: problem)
        }
        self.files = files
        self.accepted = accepted
        let authorities: TLSConfig.TrustRootsSource = .certificates([.file(path: files.authorities, format: .pem)])
        do {
            server = try .mTLS(certificateReloader: self) { $0.trustRoots = authorities }
            client = try .mTLS(certificateReloader: self) {
                $0.trustRoots = authorities
                $0.serverCertificateVerification = .fullVerification
            }
        } catch {
            throw ConfigurationError(key: setting.environmentName, flag: setting.flagName, problem: "\(error)")
        }
    }

    /// Why a certificate cannot be used now; `nil` when it can.
    static func problem(with leaf: Certificate, now: Date = Date()) -> String? {
        if now < leaf.notValidBefore { return "it is not valid before \(leaf.notValidBefore)" }
        if now >= leaf.notValidAfter { return "it expired at \(leaf.notValidAfter)" }
        return nil
    }

    public var sslContextConfigurationOverride: NIOSSLContextConfigurationOverride { accepted.pair ?? .noChanges }

    public func run() async throws { try await reloader.run() }

    /// The pair in use, and what was last refused (so that each refusal is logged once, not every interval).
    private final class Accepted: Sendable {
        private let state = Mutex<
            (leaf: Certificate?, pair: NIOSSLContextConfigurationOverride?, refused: Certificate??)
        >(
            (nil, nil, .none))

        var pair: NIOSSLContextConfigurationOverride? { state.withLock { $0.pair } }
        var lastRefused: Certificate? { state.withLock { $0.refused ?? nil } }

        /// Whether `leaf` is new.
        func take(_ leaf: Certificate, _ pair: NIOSSLContextConfigurationOverride) -> Bool {
            state.withLock { state in
                defer { state = (leaf, pair, .none) }
                return state.leaf != leaf
            }
        }

        /// Whether this refusal is news: not the same certificate (or the same failure to load) as the last.
        func refuse(_ leaf: Certificate?) -> Bool {
            state.withLock { state in
                defer { state.refused = .some(leaf) }
                return state.refused != .some(leaf)
            }
        }
    }
}
