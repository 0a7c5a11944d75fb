import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import ShippyConfiguration
import ShippyRuntime

/// `api-gateway healthcheck`: exits 0 when `GET /readyz` (or `--path`) on the gateway answers 200, 1 otherwise;
/// for compose health checks (the image has no curl). Over HTTPS when the gateway serves it (`HTTPS_CERTIFICATE`).
struct HTTPHealthcheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "healthcheck",
        abstract: "Exit 0 when the gateway at 127.0.0.1:PORT answers 200 on /readyz, 1 otherwise.")

    @Option(help: "The path to ask: /readyz (the services behind it too) or /healthz (the process).")
    var path: String = "/readyz"

    @Option(help: "Seconds to wait for an answer.")
    var timeout: Double = 3

    func run() async throws {
        let settings = try await Settings.load()
        let port = try settings.value(ServerSettings.port(default: APIGatewayCommand.defaultPort))
        let https = try settings.value(GatewayConfiguration.httpsCertificate) != nil
        let limit = Duration.milliseconds(Int64(timeout * 1000))
        // The answer within `timeout`, or none: a gateway that takes the connection and never answers is not healthy.
        let status = await withTaskGroup(of: Int?.self) { group in
            group.addTask {
                try? await Self.status(
                    port: port, path: path, https: https, timeout: .milliseconds(Int64(timeout * 1000)))
            }
            group.addTask {
                try? await Task.sleep(for: limit)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        print(status.map { "HTTP \($0)" } ?? "unreachable: nothing answers on 127.0.0.1:\(port)")
        if status == 200 { return }
        throw ExitCode.failure
    }

    /// The status code of one `GET path` over HTTP/1.0 to 127.0.0.1:port, in TLS with `https`. The certificate is
    /// not verified: it names the host browsers use, this asks its own process, and it sends nothing secret.
    static func status(port: Int, path: String, https: Bool, timeout: TimeAmount) async throws -> Int? {
        // Made only for HTTPS: compose runs this every few seconds against a gateway that mostly serves plain HTTP.
        let context = try https ? Self.unverifiedTLS() : nil
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(timeout)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let context {
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: context, serverHostname: nil))
                    }
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: "GET \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"))
            var head = ""
            for try await var chunk in inbound {
                head += chunk.readString(length: chunk.readableBytes) ?? ""
                if head.contains("\r\n") { break }
            }
            // "HTTP/1.1 200 OK"
            let parts = head.prefix { $0 != "\r" }.split(separator: " ")
            return parts.count >= 2 ? Int(parts[1]) : nil
        }
    }

    private static func unverifiedTLS() throws -> NIOSSLContext {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateVerification = .none
        return try NIOSSLContext(configuration: tls)
    }
}
