import GRPCNIOTransportHTTP2
import ShippyConfiguration

/// A process's identity on the wire, as PEM files: its certificate chain (the leaf's common name is the identity:
/// `consignment-service`, `api-gateway`, …), its private key, and the bundle of authorities it verifies peers by.
/// Servers require a client certificate from that bundle (mutual TLS); clients verify the server's name too.
public struct TLSFiles: Sendable, Hashable {
    public var certificate: String
    public var key: String
    public var authorities: String

    public init(certificate: String, key: String, authorities: String) {
        self.certificate = certificate
        self.key = key
        self.authorities = authorities
    }

    public static let certificateSetting = Setting<String?>.optionalText(
        "tls.certificate", "PEM file of this process's certificate chain (its identity on the wire).")
    public static let keySetting = Setting<String?>.optionalText(
        "tls.key", "PEM file of the certificate's private key.")
    public static let authoritiesSetting = Setting<String?>.optionalText(
        "tls.ca", "PEM file of the certificate authorities whose certificates peers must present.")
    public static let settings: [any SettingDescription] = [certificateSetting, keySetting, authoritiesSetting]
    /// "TLS_CERTIFICATE, TLS_KEY and TLS_CA": how errors and hints name the three together.
    public static let environmentNames: String = {
        let names = settings.map(\.environmentName)
        return names.dropLast().joined(separator: ", ") + " and " + names.last!
    }()

    /// The configured files; `nil` when none is set (plaintext). Some but not all set is a mistake, not plaintext.
    /// - Throws: `ConfigurationError` naming the first missing key when only some are set.
    public static func configured(in settings: Settings) throws(ConfigurationError) -> TLSFiles? {
        let certificate = try settings.value(certificateSetting)
        let key = try settings.value(keySetting)
        let authorities = try settings.value(authoritiesSetting)
        guard let certificate, let key, let authorities else {
            let given = [(certificateSetting, certificate), (keySetting, key), (authoritiesSetting, authorities)]
            guard let missing = given.first(where: { $0.1 == nil }), given.contains(where: { $0.1 != nil }) else {
                return nil
            }
            throw ConfigurationError(
                key: missing.0.environmentName, flag: missing.0.flagName,
                problem: "is needed with the other TLS settings (all three, or none)")
        }
        return TLSFiles(certificate: certificate, key: key, authorities: authorities)
    }

    /// A short-lived client's security (a CLI's; a service's clients use its `CertificateRotation`): its
    /// certificate for the server, and the server's verified against the authorities and the address dialled (a
    /// name or an IP address the certificate must list).
    public var client: HTTP2ClientTransport.Posix.TransportSecurity {
        .mTLS(certificateChain: [.file(path: certificate, format: .pem)], privateKey: .file(path: key, format: .pem)) {
            $0.trustRoots = .certificates([.file(path: authorities, format: .pem)])
            $0.serverCertificateVerification = .fullVerification
        }
    }
}
