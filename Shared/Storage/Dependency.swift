/// What a service needs before it can serve: a database, a broker, a key file. `ReadinessService` (ShippyRuntime)
/// connects each through the startup retry and probes it while the service runs.
public struct Dependency: Sendable {
    /// How logs and errors name it, with its address and never its credentials: "MongoDB at mongodb://…".
    public var name: String
    /// One connection attempt: connect, check, prepare (indexes, schema, seed). Must be idempotent.
    public var connect: @Sendable () async throws -> Void
    /// Releases what `connect` opened; runs after the gRPC server has stopped.
    public var close: @Sendable () async -> Void
    /// Whether it still answers once connected (a ping); `nil` for what cannot be lost (a key file, threads).
    public var probe: (@Sendable () async throws -> Void)?

    public init(
        name: String,
        connect: @escaping @Sendable () async throws -> Void,
        close: @escaping @Sendable () async -> Void = {},
        probe: (@Sendable () async throws -> Void)? = nil
    ) {
        self.name = name
        self.connect = connect
        self.close = close
        self.probe = probe
    }
}
