import Foundation
import JWTKit
import Logging
import ShippyDomain
import ShippyIdentity
import ShippyRuntime

/// Where the user service's private key comes from, and where it publishes the public key.
struct SigningKeyConfiguration: Sendable {
    /// PEM text of the key (env `JWT_PRIVATE_KEY`); wins over the file.
    var privateKeyPEM: String?
    var privateKeyFile: String?
    /// Generate a key into `privateKeyFile` when the file does not exist (development and first start).
    var generateKey: Bool
    /// Where to write the public key for verifiers (other services read it).
    var publicKeyFile: String?
}

/// Loads (or, for development, generates) the signing key. The key is never logged or echoed.
enum SigningKeyLoader {
    /// - Throws: `ConfigurationError` naming the key setting that is missing or unusable.
    static func load(_ configuration: SigningKeyConfiguration, logger: Logger) throws -> ES256PrivateKey {
        do {
            return try loadKey(configuration, logger: logger)
        } catch let error as ShippyError {
            throw ConfigurationError(key: "JWT_PRIVATE_KEY_FILE", flag: "jwt-private-key-file", problem: error.message)
        }
    }

    private static func loadKey(_ configuration: SigningKeyConfiguration, logger: Logger) throws -> ES256PrivateKey {
        let key: ES256PrivateKey
        if let pem = configuration.privateKeyPEM {
            key = try TokenKeys.privateKey(pem: pem, source: "JWT_PRIVATE_KEY")
        } else if let path = configuration.privateKeyFile {
            if let pem = try? String(contentsOfFile: path, encoding: .utf8) {
                key = try TokenKeys.privateKey(pem: pem, source: "JWT_PRIVATE_KEY_FILE \(path)")
            } else if configuration.generateKey {
                key = try generate(at: path, logger: logger)
            } else {
                throw ConfigurationError(
                    key: "JWT_PRIVATE_KEY_FILE", flag: "jwt-private-key-file",
                    problem: "\(path) cannot be read (set JWT_GENERATE_KEY=true to create a development key there)")
            }
        } else {
            throw ConfigurationError(
                key: "JWT_PRIVATE_KEY_FILE", flag: "jwt-private-key-file",
                problem: "is required (or JWT_PRIVATE_KEY with the PEM itself)")
        }
        if let path = configuration.publicKeyFile {
            try writeAtomically(key.publicKey.pemRepresentation + "\n", to: path, permissions: 0o644)
            logger.info(
                "published the token public key",
                metadata: ["path": "\(path)", "kid": "\(TokenKeys.keyID(of: key.publicKey))"])
        }
        return key
    }

    /// Creates a new key file without ever replacing one: when replicas start together, the first wins
    /// and the others read its key.
    private static func generate(at path: String, logger: Logger) throws -> ES256PrivateKey {
        let key = ES256PrivateKey()
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        let temporary = "\(path).\(getpid()).tmp"
        guard
            FileManager.default.createFile(
                atPath: temporary, contents: Data(key.pemRepresentation.utf8), attributes: [.posixPermissions: 0o600])
        else { throw ShippyError.invalidArgument("cannot write a key to \(directory)") }
        defer { unlink(temporary) }
        if link(temporary, path) == 0 {
            logger.notice("generated a development signing key", metadata: ["path": "\(path)"])
            return key
        }
        let pem = try String(contentsOfFile: path, encoding: .utf8)
        return try TokenKeys.privateKey(pem: pem, source: "JWT_PRIVATE_KEY_FILE \(path)")
    }

    private static func writeAtomically(_ text: String, to path: String, permissions: Int) throws {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        let temporary = "\(path).\(getpid()).tmp"
        guard
            FileManager.default.createFile(
                atPath: temporary, contents: Data(text.utf8), attributes: [.posixPermissions: permissions])
        else { throw ShippyError.invalidArgument("cannot write the public key to \(directory)") }
        guard rename(temporary, path) == 0 else {
            unlink(temporary)
            throw ShippyError.invalidArgument("cannot write the public key to \(path)")
        }
    }
}
