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

/// A service's certificate and key, re-read every `interval` while it runs, so that a certificate is rotated by
/// replacing its files: each new connection, served or dialled, uses the pair read last; calls in flight finish on
/// their connection's. A pair that is not valid now (expired, not yet valid) or does not load is refused with an
/// error in the log, and the previous one stays. The leaf's expiry is the gauge
/// `tls_certificate_expiry_timestamp_seconds{use}` (the alert `ShippyCertificateExpiresSoon` reads it). The
/// authorities (`TLS_CA`) are read at start.
public struct CertificateRotation: CertificateReloader, Service {
    /// The server's security for gRPC: the pair in use, and a client certificate required from one of the
    /// authorities (`.plaintext` for a pair without authorities).
    public private(set) var server: HTTP2ServerTransport.Posix.TransportSecurity = .plaintext
    /// A gRPC client's security: the pair in use, and the server's certificate verified against the authorities and
    /// the address dialled (`.plaintext` for a pair without authorities).
    public private(set) var client: HTTP2ClientTransport.Posix.TransportSecurity = .plaintext
    private let reloader: TimedCertificateReloader
    private let accepted: Accepted

    /// A process's identity on the wire (`TLSFiles`): its pair, and the authorities its peers' certificates need.
    /// - Throws: `ConfigurationError` naming `TLS_CERTIFICATE` when the pair does not load or is not valid now.
    public init(files: TLSFiles, interval: Duration = .seconds(5), logger: Logger) throws(ConfigurationError) {
        try self.init(
            certificate: (files.certificate, TLSFiles.certificateSetting), key: (files.key, TLSFiles.keySetting),
            authorities: files.authorities, use: "identity", interval: interval, logger: logger)
    }

    /// A pair of files, each with the setting that named it (errors name it); `use` labels the expiry gauge. With
    /// `authorities`, the gRPC securities of mutual TLS; without, a pair for `httpsConfiguration()`.
    /// - Throws: `ConfigurationError` naming the certificate's setting when the pair does not load or is not valid now.
    public init(
        certificate: (path: String, setting: Setting<String?>), key: (path: String, setting: Setting<String?>),
        authorities: String? = nil, use: String, interval: Duration = .seconds(5), logger: Logger
    ) throws(ConfigurationError) {
        let accepted = Accepted()
        let expiry = Gauge(label: "tls_certificate_expiry_timestamp_seconds", dimensions: [("use", use)])
        let configuration = TimedCertificateReloader.Configuration(
            refreshInterval: interval,
            certificateSource: .init(location: .file(path: certificate.path), format: .pem),
            privateKeySource: .init(location: .file(path: key.path), format: .pem)
        ) {
            $0.onCertificateLoaded = { loaded in
                guard let leaf = loaded.currentX509CertificateChain.first else { return }
                let metadata: Logger.Metadata = [
                    "certificate": "\(certificate.path)", "subject": "\(leaf.subject)",
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
                        metadata: ["certificate": "\(certificate.path)", "key": "\(key.path)"])
                }
            }
        }
        func failure(_ problem: String) -> ConfigurationError {
            ConfigurationError(
                key: certificate.setting.environmentName, flag: certificate.setting.flagName, problem: problem)
        }
        do {
            reloader = try TimedCertificateReloader.makeReloaderValidatingSources(configuration: configuration)
        } catch {
            throw failure("cannot load it with \(key.setting.environmentName): \(error)")
        }
        guard accepted.pair != nil else {
            throw failure(accepted.lastRefused.flatMap { Self.problem(with: $0) } ?? "it is not valid now")
        }
        self.accepted = accepted
        guard let authorities else { return }
        let roots: TLSConfig.TrustRootsSource = .certificates([.file(path: authorities, format: .pem)])
        do {
            server = try .mTLS(certificateReloader: self) { $0.trustRoots = roots }
            client = try .mTLS(certificateReloader: self) {
                $0.trustRoots = roots
                $0.serverCertificateVerification = .fullVerification
            }
        } catch {
            throw failure("\(error)")
        }
    }

    /// An HTTPS server's TLS (1.2 and later, HTTP/1.1), with the pair read last at each handshake.
    public func httpsConfiguration() throws -> TLSConfiguration {
        var configuration = try TLSConfiguration.makeServerConfiguration(certificateReloader: self)
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = ["http/1.1"]
        return configuration
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
