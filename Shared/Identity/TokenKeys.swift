import Crypto
import Foundation
import JWTKit
import ShippyDomain

/// The ES256 keys of Shippy's tokens, and the key id (`kid`) derived from each public key.
///
/// The user service holds the private key; every other service holds only public keys, read from a PEM
/// file that may list several (the current key and the next, to rotate without downtime).
public enum TokenKeys {
    /// A key id that names the public key itself: the first 16 characters of the base64url SHA-256 of its
    /// PEM, so that signer and verifiers agree without configuration.
    public static func keyID(of publicKey: ES256PublicKey) -> String {
        let digest = SHA256.hash(data: Data(publicKey.pemRepresentation.utf8))
        return String(
            Data(digest).base64EncodedString()
                .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").prefix(16))
    }

    /// Reads a private key from PEM text (SEC1 `EC PRIVATE KEY` or PKCS#8 `PRIVATE KEY`, curve P-256).
    /// - Throws: `ShippyError` `.invalidArgument` naming `source`, never echoing the key.
    public static func privateKey(pem: String, source: String) throws(ShippyError) -> ES256PrivateKey {
        do {
            return try ES256PrivateKey(pem: pem)
        } catch {
            throw .invalidArgument("\(source) does not hold a PEM P-256 (ES256) private key")
        }
    }

    /// Reads every public key from PEM text holding one or more `PUBLIC KEY` blocks.
    /// - Throws: `ShippyError` `.invalidArgument` when there is none or one cannot be read.
    public static func publicKeys(pem: String, source: String) throws(ShippyError) -> [ES256PublicKey] {
        let blocks = pem.components(separatedBy: "-----END PUBLIC KEY-----")
            .compactMap { block -> String? in
                guard let start = block.range(of: "-----BEGIN PUBLIC KEY-----") else { return nil }
                return String(block[start.lowerBound...]) + "-----END PUBLIC KEY-----\n"
            }
        guard !blocks.isEmpty else { throw .invalidArgument("\(source) holds no PEM public key") }
        var keys: [ES256PublicKey] = []
        for block in blocks {
            do {
                keys.append(try ES256PublicKey(pem: block))
            } catch {
                throw .invalidArgument("\(source) holds a public key that is not P-256 (ES256)")
            }
        }
        return keys
    }
}
