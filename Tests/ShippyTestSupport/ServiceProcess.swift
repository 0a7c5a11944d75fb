import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import ShippyContracts
import ShippyDiscovery
import ShippyRuntime
import Testing

/// A real service executable listening on a free port of 127.0.0.1.
package struct ServiceProcess {
    package let process: ChildProcess
    package let port: Int
    /// Where its Prometheus endpoint listens: `http://127.0.0.1:metricsPort/metrics`.
    package let metricsPort: Int
    /// The executable's name and the environment it was started with, for its other commands.
    package let executable: String
    package let environment: [String: String]

    /// Starts `executable` with `environment` (plus HOST, PORT: `port` or a free one, and METRICS_PORT: a free one).
    /// Without a certificate in `environment` (`TestAuthority.environment`), it runs in plaintext, explicitly
    /// (PLAINTEXT=true) as a service does only when told so.
    package static func start(
        _ executable: String, environment: [String: String], port: Int? = nil
    ) throws -> ServiceProcess {
        let port = try port ?? freePort()
        let metricsPort = try freePort()
        let plaintext = ServerSettings.plaintext.environmentName
        let security = environment[TLSFiles.certificateSetting.environmentName] == nil ? [plaintext: "true"] : [:]
        let environment = security.merging(environment) { $1 }.merging(
            ["HOST": "127.0.0.1", "PORT": "\(port)", "METRICS_PORT": "\(metricsPort)"]) { $1 }
        let process = try ChildProcess(try TestEnvironment.executable(executable), environment: environment)
        return ServiceProcess(
            process: process, port: port, metricsPort: metricsPort, executable: executable, environment: environment)
    }

    /// Runs another command of the same executable with the same settings (`user-service grant-admin EMAIL`),
    /// requiring that it exits 0.
    /// - Returns: what it printed.
    @discardableResult
    package func command(_ arguments: [String]) async throws -> String {
        let child = try ChildProcess(
            try TestEnvironment.executable(executable), arguments: arguments, environment: environment)
        let status = await child.waitForExit(timeout: .seconds(30))
        await child.stop()
        try #require(
            status == 0, "\(executable) \(arguments) exited \(String(describing: status)): \(child.errorOutput)")
        return child.output
    }

    /// The service's `/metrics` text, fetched over HTTP.
    package func metrics() async throws -> String {
        try await httpGet(host: "127.0.0.1", port: metricsPort, path: "/metrics")
    }

    package var target: any ResolvableTarget { .ipv4(host: "127.0.0.1", port: port) }

    /// Its own certificate when it was started with one (`TestAuthority.environment`): it probes itself with it, as
    /// its `healthcheck` command does.
    package var tls: TLSFiles? {
        guard let certificate = environment[TLSFiles.certificateSetting.environmentName],
            let key = environment[TLSFiles.keySetting.environmentName],
            let authorities = environment[TLSFiles.authoritiesSetting.environmentName]
        else { return nil }
        return TLSFiles(certificate: certificate, key: key, authorities: authorities)
    }

    package func health() async -> HealthProbe.Outcome {
        await HealthProbe.check(target: target, timeout: .seconds(2), tls: tls)
    }

    package func isServing() async -> Bool {
        if case .serving = await health() { return true }
        return false
    }

    /// Waits for SERVING, failing the test with the service's log when it does not come.
    package func waitUntilServing(timeout: Duration = .seconds(30)) async throws {
        let serving = await eventually(within: timeout) { await isServing() }
        try #require(serving, "service never reported SERVING; its log:\n\(process.errorOutput)")
    }

    /// A client over one connection, presenting `identity` (mutual TLS) or plaintext when `nil`.
    package func withClient<T: Sendable>(
        as identity: TLSFiles? = nil, _ body: (GRPCClient<HTTP2ClientTransport.Posix>) async throws -> T
    ) async throws -> T {
        try await withGRPCClient(
            transport: .http2NIOPosix(target: target, transportSecurity: identity?.client ?? .plaintext),
            handleClient: body)
    }
}

/// Sends request bytes as they are, whatever they hold, and returns the response bytes.
package struct RawBytesSerializer: MessageSerializer {
    package init() {}
    package func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes { Bytes(message) }
}

package struct RawBytesDeserializer: MessageDeserializer {
    package init() {}
    package func deserialize<Bytes: GRPCContiguousBytes>(_ bytes: Bytes) throws -> [UInt8] {
        bytes.withUnsafeBytes { Array($0) }
    }
}
