import GRPCCore
import GRPCNIOTransportHTTP2
import ServiceLifecycle
import ShippyDiscovery
import ShippyTelemetry

/// A gRPC client to another service, as a lifecycle `Service`: its connections run until shutdown.
public struct GRPCClientService: Service {
    public let client: GRPCClient<ServiceTransport>

    /// - Parameter transport: the service's replicas (`ServiceTransport`), with its retry policies.
    public init(transport: ServiceTransport) {
        client = GRPCClient(transport: transport, interceptors: [ClientCallTelemetry()])
    }

    /// - Parameter target: where the service is (`ServiceAddress.target`); calls follow `RetryPolicies`.
    public init(target: any ResolvableTarget) throws {
        self.init(transport: try ServiceTransport(main: target, serviceConfig: RetryPolicies.serviceConfig()))
    }

    public func run() async throws {
        try await withGracefulShutdownHandler {
            try await client.runConnections()
        } onGracefulShutdown: {
            client.beginGracefulShutdown()
        }
    }
}
