import Crypto
import Foundation
import ShippyConfiguration
import ShippyDiscovery
import SwiftASN1
import X509

/// A certificate authority made for one test, and the certificates it signs, as PEM files in a folder of its own:
/// what a deployment's CA would hand each program, without a tool or a network.
package struct TestAuthority {
    package let name: String
    /// The PEM file of this authority's certificate: the bundle peers are verified by.
    package let bundle: String
    private let directory: URL
    private let key: P256.Signing.PrivateKey
    private let certificate: Certificate

    package init(name: String = "Shippy test CA") throws {
        self.name = name
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("shippy-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        key = P256.Signing.PrivateKey()
        let subject = try DistinguishedName { CommonName(name) }
        certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
            notValidBefore: Date(timeIntervalSinceNow: -3600), notValidAfter: Date(timeIntervalSinceNow: 86_400),
            issuer: subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            },
            issuerPrivateKey: .init(key))
        bundle = directory.appendingPathComponent("\(Self.fileName(name)).pem").path
        try certificate.serializeAsPEM().pemString.appending("\n").write(
            toFile: bundle, atomically: true, encoding: .utf8)
    }

    /// The files of a certificate naming `identity`, for 127.0.0.1 and localhost, signed by this authority and valid
    /// from `validFrom` to `validUntil` (by default, from an hour ago for a day).
    package func issue(
        _ identity: String, validFrom: Date = Date(timeIntervalSinceNow: -3600),
        validUntil: Date = Date(timeIntervalSinceNow: 86_400)
    ) throws -> TLSFiles {
        let leafKey = P256.Signing.PrivateKey()
        let leaf = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(leafKey.publicKey),
            notValidBefore: validFrom, notValidAfter: validUntil, issuer: certificate.subject,
            subject: try DistinguishedName { CommonName(identity) }, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                SubjectAlternativeNames([
                    .dnsName("localhost"), .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1])),
                ])
            },
            issuerPrivateKey: .init(key))
        // A file of its own each time: a second certificate for the same identity never replaces a first in use.
        let unique = UUID().uuidString.prefix(8)
        let base = directory.appendingPathComponent("\(Self.fileName(name))-\(Self.fileName(identity))-\(unique)").path
        try leaf.serializeAsPEM().pemString.appending("\n").write(
            toFile: "\(base).pem", atomically: true, encoding: .utf8)
        try leafKey.pemRepresentation.appending("\n").write(
            toFile: "\(base)-key.pem", atomically: true, encoding: .utf8)
        return TLSFiles(certificate: "\(base).pem", key: "\(base)-key.pem", authorities: bundle)
    }

    private static func fileName(_ name: String) -> String {
        String(name.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "-" })
    }
}

extension TLSFiles {
    /// The settings that give a process these files, as environment variables.
    package var environment: [String: String] {
        [
            TLSFiles.certificateSetting.environmentName: certificate, TLSFiles.keySetting.environmentName: key,
            TLSFiles.authoritiesSetting.environmentName: authorities,
        ]
    }
}
