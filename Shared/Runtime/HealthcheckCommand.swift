import ArgumentParser
import GRPCCore
import GRPCNIOTransportHTTP2
import ShippyConfiguration
import ShippyContracts
import ShippyDiscovery

/// `SERVICE healthcheck`: calls grpc.health.v1 Check and exits 0 only on SERVING (1 otherwise), for
/// compose health checks and scripts.
public struct HealthcheckCommand<Identity: ServiceIdentity>: AsyncParsableCommand {
    public static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "healthcheck",
            abstract: "Exit 0 when the service at ADDRESS reports SERVING, 1 otherwise."
        )
    }

    @Option(help: "The service's address (default 127.0.0.1:PORT, PORT from the environment or the default).")
    public var address: String?

    @Option(help: "The health service name to check; empty for the server as a whole.")
    public var service: String = ""

    @Option(help: "Seconds to wait for an answer.")
    public var timeout: Double = 3

    public init() {}

    public func run() async throws {
        let settings = try await Settings.load()
        let port = try settings.value(ServerSettings.port(default: Identity.defaultPort))
        let target = try ServiceAddress.target(address ?? "127.0.0.1:\(port)", key: "--address")
        // The service's own certificate (its settings are the probe's) is a client certificate its server takes.
        let status = await HealthProbe.check(
            target: target, service: service, timeout: .seconds(timeout), tls: try TLSFiles.configured(in: settings))
        print(status.description)
        if case .serving = status { return }
        throw ExitCode.failure
    }
}

/// One health check over a fresh connection.
public enum HealthProbe {
    public enum Outcome: CustomStringConvertible, Sendable {
        case serving
        case notServing(Grpc_Health_V1_HealthCheckResponse.ServingStatus)
        case failed(RPCError.Code, String)

        public var description: String {
            switch self {
            case .serving: "SERVING"
            case .notServing(let status): "\(status)".uppercased()
            case .failed(let code, let message): "unreachable: \(code): \(message)"
            }
        }
    }

    public static func check(
        target: any ResolvableTarget, service: String = "", timeout: Duration, tls: TLSFiles? = nil
    ) async -> Outcome {
        do {
            let transport = try ServiceTransport(main: target, security: tls?.client ?? .plaintext)
            return try await withGRPCClient(transport: transport) { client in
                let health = Grpc_Health_V1_Health.Client(wrapping: client)
                var options = CallOptions.defaults
                options.timeout = timeout
                let response = try await health.check(.with { $0.service = service }, options: options)
                return response.status == .serving ? .serving : .notServing(response.status)
            }
        } catch let error as RPCError {
            return .failed(error.code, error.message)
        } catch {
            return .failed(.unknown, "\(error)")
        }
    }
}
