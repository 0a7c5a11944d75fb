import GRPCCore
import GRPCNIOTransportHTTP2
import ShippyContracts
import ShippyDomain
import ShippyStorage

/// Finds a vessel for a consignment; the gRPC implementation asks vessel-service.
protocol VesselFinder: Sendable {
    /// - Throws: `ShippyError`: `.resourceExhausted` (no vessel fits, with vessel-service's message),
    ///   `.unavailable` or `.deadlineExceeded` naming vessel-service, `.invalidArgument`.
    func findAvailable(_ specification: VesselSpecification) async throws(ShippyError) -> String
}

/// Asks `vessel.VesselService/FindAvailable`, with a deadline per call. Retries (configured on the
/// client, see `serviceConfig`) cover `unavailable` only: the call reads and changes nothing.
struct GRPCVesselFinder: VesselFinder {
    let client: GRPCClient<HTTP2ClientTransport.Posix>
    /// The address as configured, for messages.
    let address: String
    let timeout: Duration

    /// FindAvailable waits for a connection (so a vessel-service that is restarting is waited for rather than
    /// failed at once) and, being idempotent, is retried on `unavailable`. `timeout` bounds the whole.
    static let serviceConfig = ServiceConfig(methodConfig: [
        MethodConfig(
            names: [MethodConfig.Name(service: "vessel.VesselService", method: "FindAvailable")],
            waitForReady: true,
            executionPolicy: .retry(
                RetryPolicy(
                    maxAttempts: 3, initialBackoff: .milliseconds(100), maxBackoff: .milliseconds(500),
                    backoffMultiplier: 2, retryableStatusCodes: [.unavailable]))
        )
    ])

    func findAvailable(_ specification: VesselSpecification) async throws(ShippyError) -> String {
        let vessels = Vessel_VesselService.Client(wrapping: client)
        do {
            // Our own deadline: gRPC's call timeout does not bound the wait for a connection.
            let response = try await withDeadline(timeout, unavailable: "vessel-service at \(address)") {
                try await vessels.findAvailable(
                    .with {
                        $0.capacity = specification.capacity
                        $0.maxWeight = specification.maxWeight
                    })
            }
            guard !response.vessel.id.isEmpty else {
                throw ShippyError(.internal, "vessel-service at \(address) answered without a vessel")
            }
            return response.vessel.id
        } catch let error as ShippyError {
            throw error
        } catch let error as RPCError {
            switch error.code {
            case .resourceExhausted, .notFound:
                throw ShippyError(.resourceExhausted, error.message)
            case .invalidArgument:
                throw ShippyError(.invalidArgument, error.message)
            case .deadlineExceeded:
                throw ShippyError(.deadlineExceeded, "vessel-service at \(address) did not answer in time")
            case .cancelled:
                throw ShippyError(.unavailable, "the call to vessel-service at \(address) was cancelled")
            default:
                throw ShippyError(.unavailable, "vessel-service at \(address) is unavailable: \(error.message)")
            }
        } catch {
            throw ShippyError(.unavailable, "vessel-service at \(address) is unavailable")
        }
    }
}
