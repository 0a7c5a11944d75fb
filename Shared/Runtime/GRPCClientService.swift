import GRPCCore
import GRPCNIOTransportHTTP2
import ServiceLifecycle
import ShippyDiscovery
import ShippyTelemetry

/// A gRPC client to another service, as a lifecycle `Service`: its connections run until shutdown.
public struct GRPCClientService: Service {
    public let client: GRPCClient<ServiceTransport>

    /// - Parameters:
    ///   - transport: the service's replicas (`ServiceTransport`), with its retry policies.
    ///   - interceptors: run after the telemetry every client has.
    public init(transport: ServiceTransport, interceptors: [any ClientInterceptor] = []) {
        client = GRPCClient(transport: transport, interceptors: [ClientCallTelemetry()] + interceptors)
    }

    /// - Parameters:
    ///   - target: where the service is (`ServiceAddress.target`); calls follow `RetryPolicies`.
    ///   - security: the process's (`ServerConfiguration.clientSecurity`).
    public init(
        target: any ResolvableTarget, security: HTTP2ClientTransport.Posix.TransportSecurity,
        interceptors: [any ClientInterceptor] = []
    ) throws {
        self.init(
            transport: try ServiceTransport(
                main: target, serviceConfig: RetryPolicies.serviceConfig(), security: security),
            interceptors: interceptors)
    }

    public func run() async throws {
        try await withGracefulShutdownHandler {
            try await client.runConnections()
        } onGracefulShutdown: {
            client.beginGracefulShutdown()
        }
    }
}
