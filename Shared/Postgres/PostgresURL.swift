import Foundation
import PostgresNIO
import ShippyDomain

/// Reads `postgres://user:password@host:port/database?sslmode=disable|prefer|require` into a client
/// configuration.
public enum PostgresURL {
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
        let tls: PostgresClient.Configuration.TLS
        switch components.queryItems?.first(where: { $0.name == "sslmode" })?.value ?? "prefer" {
        case "disable": tls = .disable
        case "prefer": tls = .prefer(.makeClientConfiguration())
        case "require": tls = .require(.makeClientConfiguration())
        case let mode: throw .invalidArgument("sslmode \"\(mode)\" is not one of disable, prefer, require")
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
