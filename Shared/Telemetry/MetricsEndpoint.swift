import Hummingbird
import Logging
import ServiceLifecycle
import ShippyConfiguration

/// `GET /metrics` in Prometheus' text format, on a port of its own (never the gRPC port, so that a scrape never
/// queues behind calls and the gRPC port carries only gRPC): the registry's metrics, then the process's.
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
        let router = Router()
        router.get("metrics") { _, _ in
            var text = [UInt8]()
            Telemetry.registry.emit(into: &text)
            ProcessMetrics.current().emit(into: &text)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: text)))
        }
        let application = Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { [logger] channel in
                logger.info("metrics listening", metadata: ["address": "http://\(host):\(port)/metrics"])
            },
            logger: logger)
        try await application.run()
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
