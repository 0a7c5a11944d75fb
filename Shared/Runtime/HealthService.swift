import GRPCCore
import ShippyContracts
import Synchronization

/// The standard `grpc.health.v1.Health` service.
///
/// Every registered service name (and `""`, the server as a whole) starts NOT_SERVING, turns SERVING when
/// the process's dependencies are connected, NOT_SERVING while one is lost, and NOT_SERVING for good when
/// shutdown begins: that is readiness. `shippy.Liveness` is SERVING from the start until shutdown, whatever
/// the dependencies do: a liveness probe asks for it, so that a database outage never restarts every replica.
public final class HealthService: Grpc_Health_V1_Health.SimpleServiceProtocol {
    public typealias Status = Grpc_Health_V1_HealthCheckResponse.ServingStatus
    /// The name a liveness probe asks for.
    public static let liveness = "shippy.Liveness"
    /// Watch streams served at once; each holds a task and a stream, so past it a Watch is refused
    /// (`resourceExhausted`) and the client is told to poll with Check.
    public static let maximumWatchers = 100

    private struct State {
        var statuses: [String: Status]
        var watchers: [Int: (service: String, continuation: AsyncStream<Status>.Continuation)] = [:]
        var nextWatcherID = 0
        var isShutDown = false
        var hasServed = false
    }

    private let state: Mutex<State>

    /// - Parameter services: Fully qualified names the server offers, e.g. `vessel.VesselService`.
    public init(services: [String]) {
        var statuses: [String: Status] = ["": .notServing, Self.liveness: .serving]
        for service in services { statuses[service] = .notServing }
        state = Mutex(State(statuses: statuses))
    }

    /// The current status of `service`, or `nil` when it is not registered.
    public func status(of service: String = "") -> Status? {
        state.withLock { $0.statuses[service] }
    }

    /// Whether calls are taken: from the first SERVING until shutdown, also while a lost dependency makes the
    /// status NOT_SERVING (the calls then fail with that dependency's own error, which says more).
    public var takesCalls: Bool { state.withLock { $0.hasServed && !$0.isShutDown } }

    /// Marks every registered service SERVING (or NOT_SERVING) and tells the watchers.
    /// Ignored after `shutDown()`: a stopping server never reports SERVING again.
    public func setServing(_ serving: Bool) {
        state.withLock { state in
            guard !state.isShutDown else { return }
            if serving { state.hasServed = true }
            for service in state.statuses.keys where service != Self.liveness {
                state.statuses[service] = serving ? .serving : .notServing
            }
            for watcher in state.watchers.values {
                if let status = state.statuses[watcher.service] { watcher.continuation.yield(status) }
            }
        }
    }

    /// Reports NOT_SERVING for good and ends every Watch stream, so they do not hold up graceful shutdown.
    public func shutDown() {
        state.withLock { state in
            for service in state.statuses.keys { state.statuses[service] = .notServing }
            state.isShutDown = true
            for watcher in state.watchers.values {
                watcher.continuation.yield(.notServing)
                watcher.continuation.finish()
            }
            state.watchers.removeAll()
        }
    }

    /// - Throws: `RPCError` `.notFound` for a service name that is not registered.
    public func check(
        request: Grpc_Health_V1_HealthCheckRequest,
        context: ServerContext
    ) async throws -> Grpc_Health_V1_HealthCheckResponse {
        guard let status = status(of: request.service) else {
            throw RPCError(code: .notFound, message: "unknown service \"\(request.service)\"")
        }
        return .with { $0.status = status }
    }

    /// Streams the status of the service now and on every change; SERVICE_UNKNOWN for unregistered names. The
    /// stream ends when the client goes away (gRPC cancels the call, not its task) or shutdown begins.
    public func watch(
        request: Grpc_Health_V1_HealthCheckRequest,
        response: RPCWriter<Grpc_Health_V1_HealthCheckResponse>,
        context: ServerContext
    ) async throws {
        let (updates, continuation) = AsyncStream.makeStream(of: Status.self, bufferingPolicy: .bufferingNewest(1))
        let id = state.withLock { state -> Int? in
            guard state.watchers.count < Self.maximumWatchers else { return nil }
            continuation.yield(state.statuses[request.service] ?? .serviceUnknown)
            if state.isShutDown {
                continuation.finish()
                return -1
            }
            let id = state.nextWatcherID
            state.nextWatcherID += 1
            state.watchers[id] = (request.service, continuation)
            return id
        }
        guard let id else {
            throw RPCError(
                code: .resourceExhausted,
                message: "too many Watch streams on this server (\(Self.maximumWatchers)); poll with Check instead")
        }
        continuation.onTermination = { [weak self] _ in
            self?.state.withLock { _ = $0.watchers.removeValue(forKey: id) }
        }
        try await withRPCCancellationHandler {
            for await status in updates {
                try await response.write(.with { $0.status = status })
            }
        } onCancelRPC: {
            continuation.finish()
        }
    }

    /// Watch streams open now.
    public var watchers: Int { state.withLock { $0.watchers.count } }
}
