import GRPCCore
import ShippyConfiguration
import ShippyContracts
import ShippyDiscovery
import ShippyDomain
import ShippyStorage

/// The gRPC implementation of the vessel-booking port (`VesselBooker`): calls `vessel.VesselService` with a
/// deadline per call. `Book`, `Confirm`, `Release` and `Cancel` are idempotent by consignment id and attempt, so they are
/// retried on `unavailable` like the read-only `FindAvailable` (see `serviceConfig`). Its errors name
/// vessel-service but never its address: they reach clients, and where a service runs is the operator's to know.
struct GRPCVesselBooker: VesselBooker {
    let client: GRPCClient<ServiceTransport>
    /// Bounds each call; the configuration file may change it while the service runs.
    let timeout: LiveSetting<Duration>

    /// Each call waits for a connection (so a vessel-service that is restarting is waited for rather than
    /// failed at once) and is retried on `unavailable` on another replica (`RetryPolicies`). `timeout` bounds
    /// the whole.
    static let serviceConfig = RetryPolicies.serviceConfig(waitForReady: true)

    func book(
        consignmentID: String, attempt: Int64, specification: VesselSpecification, credential: String
    ) async throws(ShippyError) -> Booking {
        let booking = try await call(credential) { vessels, metadata in
            try await vessels.book(
                .with {
                    $0.consignmentID = consignmentID
                    $0.attempt = attempt
                    $0.containers = specification.capacity
                    $0.weight = specification.maxWeight
                }, metadata: metadata)
        }
        return try Booking(booking)
    }

    func confirm(consignmentID: String, attempt: Int64, credential: String) async throws(ShippyError) -> Booking {
        let booking = try await call(credential) { vessels, metadata in
            try await vessels.confirm(
                .with {
                    $0.consignmentID = consignmentID
                    $0.attempt = attempt
                }, metadata: metadata)
        }
        return try Booking(booking)
    }

    func release(consignmentID: String, attempt: Int64, credential: String) async throws(ShippyError) {
        _ = try await call(credential) { vessels, metadata in
            try await vessels.release(
                .with {
                    $0.consignmentID = consignmentID
                    $0.attempt = attempt
                }, metadata: metadata)
        }
    }

    func cancel(consignmentID: String, credential: String) async throws(ShippyError) -> Booking {
        let booking = try await call(credential) { vessels, metadata in
            try await vessels.cancel(.with { $0.consignmentID = consignmentID }, metadata: metadata)
        }
        return try Booking(booking)
    }

    /// Runs one call with the caller's token and our deadline; vessel-service's errors become ours.
    private func call<Response: Sendable>(
        _ token: String,
        _ body:
            @escaping @Sendable (Vessel_VesselService.Client<ServiceTransport>, Metadata) async throws
            -> Response
    ) async throws(ShippyError) -> Response {
        let vessels = Vessel_VesselService.Client(wrapping: client)
        let metadata: Metadata = ["authorization": "Bearer \(token)"]
        do {
            // Our own deadline: gRPC's call timeout does not bound the wait for a connection.
            return try await withDeadline(timeout.value, unavailable: "vessel-service") {
                try await body(vessels, metadata)
            }
        } catch var error as ShippyError {
            // Our own deadline around the call: it is vessel-service that did not answer.
            if error.code == .unavailable || error.code == .deadlineExceeded { error.dependency = "vessel-service" }
            throw error
        } catch let error as RPCError {
            switch error.code {
            case .resourceExhausted: throw ShippyError(.resourceExhausted, error.message)
            case .invalidArgument: throw ShippyError(.invalidArgument, error.message)
            case .permissionDenied: throw ShippyError(.permissionDenied, error.message)
            case .failedPrecondition: throw ShippyError(.failedPrecondition, error.message)
            case .notFound: throw ShippyError(.notFound, error.message)
            case .unauthenticated: throw ShippyError(.unauthenticated, error.message)
            case .deadlineExceeded:
                throw ShippyError(
                    .deadlineExceeded, "vessel-service did not answer in time",
                    dependency: "vessel-service")
            case .cancelled:
                throw ShippyError(
                    .unavailable, "the call to vessel-service was cancelled", dependency: "vessel-service"
                )
            default:
                throw ShippyError(
                    .unavailable, "vessel-service is unavailable: \(error.message)",
                    dependency: "vessel-service")
            }
        } catch {
            throw ShippyError(.unavailable, "vessel-service is unavailable", dependency: "vessel-service")
        }
    }
}

extension Booking {
    /// vessel-service's answer as a booking.
    /// - Throws: `ShippyError` `.internal` for a reserved or confirmed booking without a vessel.
    init(_ proto: Vessel_Booking) throws(ShippyError) {
        let state: Booking.State =
            switch proto.state {
            case .confirmed: .confirmed
            case .released: .released
            case .cancelled: .cancelled
            default: .reserved
            }
        guard state == .released || !proto.vesselID.isEmpty else {
            throw ShippyError(.internal, "vessel-service answered a booking without a vessel")
        }
        self.init(
            consignmentID: proto.consignmentID, vesselID: proto.vesselID, containers: proto.containers,
            weight: proto.weight, ownerID: proto.ownerID, state: state, expiresAtMilliseconds: proto.expiresAtUnixMs,
            attempt: proto.attempt)
    }
}
