import GRPCCore
import GRPCNIOTransportHTTP2
import ServiceLifecycle
import ShippyTelemetry

/// A gRPC client to another service, as a lifecycle `Service`: its connections run until shutdown.
public struct GRPCClientService: Service {
    public let client: GRPCClient<HTTP2ClientTransport.Posix>

    /// - Parameters:
    ///   - target: where the service is (`ServiceAddress.target`).
    ///   - serviceConfig: per-method timeouts and retry policies.
    public init(target: any ResolvableTarget, serviceConfig: ServiceConfig = ServiceConfig()) throws {
        var config = HTTP2ClientTransport.Posix.Config.defaults
        // Reconnect within a second of the peer coming back (the default backoff grows to two minutes).
        config.backoff = .init(initial: .milliseconds(100), max: .seconds(1), multiplier: 1.6, jitter: 0.2)
        client = GRPCClient(
            transport: try .http2NIOPosix(
                target: target, transportSecurity: .plaintext, config: config, serviceConfig: serviceConfig),
            interceptors: [ClientCallTelemetry()])
    }

    public func run() async throws {
        try await withGracefulShutdownHandler {
            try await client.runConnections()
        } onGracefulShutdown: {
            client.beginGracefulShutdown()
        }
    }
}
