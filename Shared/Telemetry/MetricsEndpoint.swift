import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import ShippyConfiguration

/// `GET /metrics` in Prometheus' text format, on a port of its own (never the gRPC port, so that a scrape never
/// queues behind calls and the gRPC port carries only gRPC): the registry's metrics, then the process's. A bare
/// HTTP/1.1 responder on SwiftNIO: one path, one answer per connection, nothing else to serve.
public struct MetricsEndpoint: Service {
    let host: String
    let port: Int
    let logger: Logger

    /// - Parameter port: 0 leaves the endpoint off (`run` then waits for the shutdown).
    public init(host: String, port: Int, logger: Logger) {
        self.host = host
        self.port = port
        self.logger = logger
    }

    public func run() async throws {
        guard port != 0 else { return try await gracefulShutdown() }
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(MetricsResponder())
                }
            }
            .bind(host: host, port: port).get()
        logger.info("metrics listening", metadata: ["address": "http://\(host):\(port)/metrics"])
        try? await gracefulShutdown()
        try? await channel.close()
    }
}

/// Answers each request once it is complete: the metrics for `GET`/`HEAD /metrics`, 404 for another path, 405
/// for another method; then closes the connection.
private final class MetricsResponder: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private var request: HTTPRequestHead?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): request = head
        case .body: break
        case .end:
            guard let request else { return }
            self.request = nil
            respond(to: request, context: context)
        }
    }

    private func respond(to request: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = request.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? request.uri
        var headers = HTTPHeaders([("connection", "close")])
        let status: HTTPResponseStatus
        var body: [UInt8] = []
        if path != "/metrics" {
            status = .notFound
        } else if request.method != .GET && request.method != .HEAD {
            status = .methodNotAllowed
            headers.add(name: "allow", value: "GET, HEAD")
        } else {
            status = .ok
            headers.add(name: "content-type", value: "text/plain; version=0.0.4; charset=utf-8")
            Telemetry.registry.emit(into: &body)
            ProcessMetrics.current().emit(into: &body)
        }
        headers.add(name: "content-length", value: "\(body.count)")
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))),
            promise: nil)
        if request.method != .HEAD && !body.isEmpty {
            context.write(
                wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
    }
}

/// The settings of the metrics endpoint.
public enum TelemetrySettings {
    public static func metricsPort(default defaultPort: Int) -> Setting<Int> {
        .integer(
            "metrics.port", default: defaultPort, in: 0...65535,
            "Port of the Prometheus endpoint /metrics (HTTP, on the gRPC host); 0 turns it off.")
    }
}
