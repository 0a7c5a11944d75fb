import GRPCCore

/// Which calls are retried, and how much: one policy for every Shippy client, so that a replica that dies or
/// drains costs its callers a retry rather than an error.
///
/// - Only idempotent methods are listed: reads (`FindAvailable`, `List`, `Get*`, `ValidateToken`), vessel
///   bookings (`Book`, `Confirm`, `Release`, `Cancel` are idempotent by consignment id), `CancelConsignment`
///   (cancelling a cancelled consignment answers it as it is), and `CreateConsignment`, which
///   every Shippy client sends with an `idempotency-key` (the same key, the same consignment). Sign-up and
///   `Create` of a vessel are never retried.
/// - Retried on `unavailable` only (no server had the call, or it refused it while starting or draining), up
///   to 4 attempts in all with 50 → 400 ms backoff, each attempt on the balancer's next replica.
/// - A budget (gRFC A6 throttling): every failed attempt costs a token of 1,000, every success gives 0.1 back;
///   with half the tokens gone no retry is made. A connection dying under load fails every call in flight on it
///   at once (a hundred in BookingConcurrencyTests), which the budget covers; when the whole service is down,
///   callers stop multiplying the load on it.
public enum RetryPolicies {
    public static let retryable: [MethodConfig.Name] =
        ["FindAvailable", "Book", "Confirm", "Release", "Cancel", "List"].map {
            .init(service: "vessel.VesselService", method: $0)
        }
        + ["Get", "GetAll", "ValidateToken"].map { .init(service: "user.UserService", method: $0) }
        + ["GetConsignments", "GetConsignment", "CreateConsignment", "CancelConsignment"].map {
            .init(service: "consignment.ShippingService", method: $0)
        }
        + [.init(service: "grpc.health.v1.Health", method: "Check")]

    public static let policy = RetryPolicy(
        maxAttempts: 4, initialBackoff: .milliseconds(50), maxBackoff: .milliseconds(400), backoffMultiplier: 2,
        retryableStatusCodes: [.unavailable])

    /// The service config of every client: `extra` first (a method named there keeps its own settings), then the
    /// retryable methods, with the budget.
    /// - Parameter waitForReady: whether calls wait for a connection (a server restarting) or fail at once.
    public static func serviceConfig(_ extra: [MethodConfig] = [], waitForReady: Bool? = nil) -> ServiceConfig {
        let named = Set(extra.flatMap(\.names))
        let retried = MethodConfig(
            names: retryable.filter { !named.contains($0) }, waitForReady: waitForReady,
            executionPolicy: .retry(policy))
        // The values are within gRFC A6's bounds, so this cannot throw.
        let budget = try? ServiceConfig.RetryThrottling(maxTokens: 1000, tokenRatio: 0.1)
        return ServiceConfig(methodConfig: extra + [retried], retryThrottling: budget)
    }
}
