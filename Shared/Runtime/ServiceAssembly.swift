import GRPCCore
import Logging
import ServiceLifecycle
import ShippyConfiguration
import ShippyIdentity
import ShippyStorage

/// The parts every gRPC service is made of, assembled in one place: health for its service, the gRPC server
/// (behind the auth interceptor when it protects a service), and readiness over its dependencies. Each
/// service's `App.build` supplies its handler, its dependencies and its own background work only.
public struct ServiceAssembly {
    public let health: HealthService
    public let server: GRPCServerService
    public let readiness: ReadinessService

    /// - Parameters:
    ///   - service: the service the handler serves, whose methods need a valid token (except `publicMethods`);
    ///     `nil` with a health name for a process that serves health only.
    ///   - verifier: checks the tokens of `service`'s calls.
    ///   - restricted: methods only some programs may call, by their certificate's identity (over TLS).
    ///   - trustedGateways: peers whose word about the client's address (`ClientAddress`) is taken; with none
    ///     given, `ClientAddress.current` is not set.
    public init(
        serving service: ServiceDescriptor?,
        healthName: String? = nil,
        handler: (any RegistrableRPCService)?,
        verifier: (any TokenVerifying)?,
        publicMethods: Set<MethodDescriptor> = [],
        restricted: [MethodDescriptor: Set<String>] = [:],
        trustedGateways: AddressSet? = nil,
        dependencies: [Dependency],
        configuration: ServerConfiguration,
        logger: Logger
    ) {
        health = HealthService(services: [healthName ?? service?.fullyQualifiedService].compactMap { $0 })
        var interceptors: [any ServerInterceptor] = []
        if let trustedGateways { interceptors.append(ClientAddressInterceptor(trustedGateways: trustedGateways)) }
        if let service, let verifier {
            interceptors.append(AuthInterceptor(verifier: verifier, protecting: service, publicMethods: publicMethods))
        }
        server = GRPCServerService(
            listener: configuration.listener, services: handler.map { [$0] } ?? [], health: health,
            restricted: restricted, interceptors: interceptors, logger: logger)
        readiness = ReadinessService(
            dependencies: dependencies, retry: StartupRetry(deadline: configuration.startupTimeout), health: health,
            logger: logger)
    }

    /// The process's services in start order: readiness, then `work`, then the gRPC server, then `last`. On
    /// shutdown the group stops them in reverse: `last` first, then the server drains its calls, then the work,
    /// and readiness closes the dependencies at the end.
    public func services(
        _ work: [(name: String, service: any Service)] = [], last: [(name: String, service: any Service)] = []
    ) -> [(name: String, service: any Service)] {
        [("readiness", readiness)] + work + [("grpc-server", server)] + last
    }
}
