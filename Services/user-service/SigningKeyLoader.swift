import Foundation
import JWTKit
import Logging
import ShippyConfiguration
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
            throw UserServiceConfiguration.privateKeyFile.error(error.message)
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
            let keys = try publish(key.publicKey, to: path)
            logger.info(
                "published the token public key",
                metadata: [
                    "path": "\(path)", "kid": "\(TokenKeys.keyID(of: key.publicKey))", "keys_in_file": "\(keys)",
                ])
        }
        return key
    }

    /// Creates a new key file without ever replacing one: when replicas start together, the first wins
    /// and the others read its key. The private key's folder is made 0700.
    private static func generate(at path: String, logger: Logger) throws -> ES256PrivateKey {
        let key = ES256PrivateKey()
        let temporary = try KeyFile.writeNew(key.pemRepresentation, beside: path, mode: 0o600, folderMode: 0o700)
        defer { unlink(temporary) }
        if link(temporary, path) == 0 {
            logger.notice("generated a development signing key", metadata: ["path": "\(path)"])
            return key
        }
        let pem = try String(contentsOfFile: path, encoding: .utf8)
        return try TokenKeys.privateKey(pem: pem, source: "JWT_PRIVATE_KEY_FILE \(path)")
    }

    /// Adds `publicKey` to the verifiers' key file, keeping the keys already there (other replicas', or the
    /// one being rotated out), so that tokens signed with any of them keep verifying. Replicas starting
    /// together take turns through a lock file. Retiring a key is removing its block from the file.
    /// - Returns: how many keys the file now holds.
    private static func publish(_ publicKey: ES256PublicKey, to path: String) throws -> Int {
        let folder = (path as NSString).deletingLastPathComponent
        if !folder.isEmpty {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        }
        let lock = open("\(path).lock", O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        guard lock >= 0 else { throw ShippyError.invalidArgument("cannot write the public key next to \(path)") }
        defer { close(lock) }
        _ = flock(lock, LOCK_EX)
        var keys =
            (try? String(contentsOfFile: path, encoding: .utf8))
            .flatMap { try? TokenKeys.publicKeys(pem: $0, source: path) } ?? []
        let ours = publicKey.pemRepresentation
        if !keys.contains(where: { $0.pemRepresentation == ours }) { keys.append(publicKey) }
        try writeAtomically(keys.map { $0.pemRepresentation + "\n" }.joined(), to: path, permissions: 0o644)
        return keys.count
    }

    private static func writeAtomically(_ text: String, to path: String, permissions: mode_t) throws {
        let temporary = try KeyFile.writeNew(text, beside: path, mode: permissions, folderMode: 0o755)
        guard rename(temporary, path) == 0 else {
            unlink(temporary)
            throw ShippyError.invalidArgument("cannot write the public key to \(path)")
        }
    }
}

/// Key files written safely: created with `O_EXCL` and their final mode from the first byte (never readable
/// by others, even for an instant), under a temporary name no other process on any host shares.
enum KeyFile {
    /// Writes `text` to a new temporary file next to `path` and returns its path; the caller links or
    /// renames it into place. A missing folder is created with `folderMode`.
    /// - Throws: `ShippyError` `.invalidArgument` naming the folder when it cannot be written.
    static func writeNew(_ text: String, beside path: String, mode: mode_t, folderMode: mode_t) throws -> String {
        let folder = (path as NSString).deletingLastPathComponent
        if !folder.isEmpty, !FileManager.default.fileExists(atPath: folder) {
            try FileManager.default.createDirectory(
                atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: Int(folderMode)])
        }
        // PIDs repeat across containers (every replica is PID 1), so the name carries a random UUID.
        let temporary = "\(path).\(UUID().uuidString).tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard descriptor >= 0 else { throw ShippyError.invalidArgument("cannot write a key file in \(folder)") }
        defer { close(descriptor) }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        guard written == bytes.count, fsync(descriptor) == 0 else {
            unlink(temporary)
            throw ShippyError.invalidArgument("cannot write a key file in \(folder)")
        }
        return temporary
    }
}
