import Logging
import ServiceLifecycle
import ShippyDomain
import ShippyMessaging
import ShippyRuntime
import ShippyStorage

/// Delivers the outbox's events to NATS JetStream, at least once: an event is marked published only after
/// JetStream acknowledged it, and JetStream drops a re-publication of the same event id (its message id)
/// within two minutes. NATS being down never fails a sign-up: events wait in PostgreSQL until it is back.
struct OutboxPublisher: Service {
    static let stream = "USERS"
    let natsURL: String
    let repository: PostgresUserRepository
    /// The schema exists once the service reports SERVING; publishing starts then.
    let health: HealthService
    let logger: Logger

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown { try await publish() }
        } catch is CancellationError where Task.isShuttingDownGracefully {
            // Stopping: unpublished events stay in the outbox for the next start.
        }
    }

    private func publish() async throws {
        while health.status() != .serving { try await Task.sleep(for: .milliseconds(100)) }
        let nats = try await connect()
        defer { Task { await nats.close() } }
        while !Task.isCancelled {
            let published = (try? await repository.publishPending(limit: 20) { event in
                try await nats.publish(subject: event.subject, payload: event.payload, messageID: event.id.uuidString.lowercased())
            }) ?? 0
            if published > 0 { logger.debug("published events", metadata: ["count": "\(published)"]) }
            try await Task.sleep(for: published > 0 ? .milliseconds(10) : .milliseconds(250))
        }
    }

    /// Connects to NATS, retrying for as long as the service runs (sign-ups go on meanwhile).
    private func connect() async throws -> NATSClient {
        let retry = StartupRetry(deadline: .seconds(Int64.max / 2), maximumDelay: .seconds(2))
        var client: NATSClient?
        try await retry.run("NATS at \(NATSClient.redact(natsURL))", logger: logger) {
            let connected = try await NATSClient.connect(url: natsURL, name: "user-service")
            do {
                try await connected.ensureStream(name: Self.stream, subjects: ["user.>"], duplicateWindow: .seconds(120))
            } catch {
                await connected.close()
                throw error
            }
            client = connected
        }
        return client!
    }
}
