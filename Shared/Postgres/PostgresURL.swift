import Foundation
import PostgresNIO
import ShippyDomain

/// Reads `postgres://user:password@host:port/database?sslmode=MODE&sslrootcert=FILE` into a client configuration.
/// `sslmode` means what it means to libpq: `disable` (plaintext), `prefer` (TLS if the server has it, unverified),
/// `require` (TLS, unverified; verified as `verify-ca` when `sslrootcert` is given), `verify-ca` (the server's
/// certificate from an authority in `sslrootcert`, else the system's), `verify-full` (and naming the host dialled).
/// The default is `verify-full`: nobody on the path can read the connection or downgrade it to plaintext.
public enum PostgresURL {
    /// The modes `sslmode` takes.
    public static let modes = ["disable", "prefer", "require", "verify-ca", "verify-full"]

    /// - Parameter statementTimeout: the server cancels a statement that runs longer (`statement_timeout`).
    /// - Throws: `ShippyError` `.invalidArgument` describing what is wrong, never echoing the password.
    public static func configuration(
        _ url: String,
        statementTimeout: Duration = .seconds(5)
    ) throws(ShippyError) -> PostgresClient.Configuration {
        guard let components = URLComponents(string: url), ["postgres", "postgresql"].contains(components.scheme)
        else { throw .invalidArgument("must look like postgres://user:password@host:5432/database") }
        guard let host = components.host, !host.isEmpty else { throw .invalidArgument("has no host") }
        guard let user = components.user, !user.isEmpty else { throw .invalidArgument("has no user name") }
        let database = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        func parameter(_ name: String) -> String? { components.queryItems?.first(where: { $0.name == name })?.value }
        var verified = TLSConfiguration.makeClientConfiguration()
        let authorities = parameter("sslrootcert")
        if let authorities {
            guard FileManager.default.isReadableFile(atPath: authorities) else {
                throw .invalidArgument("sslrootcert \(authorities) is not a readable file")
            }
            verified.trustRoots = .file(authorities)
        }
        var unverified = verified
        unverified.certificateVerification = .none
        var authorityOnly = verified
        authorityOnly.certificateVerification = .noHostnameVerification
        let tls: PostgresClient.Configuration.TLS
        switch parameter("sslmode") ?? "verify-full" {
        case "disable": tls = .disable
        case "prefer": tls = .prefer(unverified)
        case "require" where authorities == nil: tls = .require(unverified)
        case "require", "verify-ca": tls = .require(authorityOnly)
        case "verify-full": tls = .require(verified)
        case let mode:
            throw .invalidArgument("sslmode \"\(mode)\" is not one of \(modes.joined(separator: ", "))")
        }
        var configuration = PostgresClient.Configuration(
            host: host,
            port: components.port ?? 5432,
            username: user.removingPercentEncoding ?? user,
            password: components.password?.removingPercentEncoding,
            database: database.isEmpty ? nil : database,
            tls: tls
        )
        configuration.options.connectTimeout = .seconds(3)
        configuration.options.additionalStartupParameters = [("statement_timeout", "\(statementTimeout.milliseconds)")]
        return configuration
    }

    /// The URL without its password, for logs.
    public static func redact(_ url: String) -> String {
        guard var components = URLComponents(string: url) else { return "(unparsable URL)" }
        if components.password != nil { components.password = "***" }
        return components.string ?? "(unparsable URL)"
    }
}
