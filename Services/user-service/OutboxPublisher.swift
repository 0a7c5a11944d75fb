import Logging
import ServiceLifecycle
import ShippyDomain
import ShippyMessaging
import ShippyRuntime
import ShippyStorage
import ShippyTelemetry

/// Delivers the outbox's events to NATS JetStream, at least once: an event is marked published only after
/// JetStream acknowledged it, and JetStream drops a re-publication of the same event id (its message id)
/// within two minutes. NATS being down never fails a sign-up: events wait in PostgreSQL until it is back.
/// An event NATS refuses for good (too large) becomes a dead letter (`outbox_dead_letters`, alerted) and the
/// rest flow. Published events are deleted after `retention`, as the stream forgets them.
struct OutboxPublisher: Service {
    static let retention = UserEvents.retention

    let nats: NATSEndpoint
    let outbox: any OutboxRepository
    /// Opens once PostgreSQL is connected and the schema exists; publishing starts then.
    let ready: ReadinessSignal
    let logger: Logger

    /// Unpublished events stay in the outbox when the service stops, for the next start.
    func run() async throws {
        try await runUntilGracefulShutdown { try await publish() }
    }

    private func publish() async throws {
        try await ready.wait()
        let nats = try await connect()
        do {
            while true {
                let published =
                    (try? await outbox.publishPending(limit: 20) { event in
                        // A span of the sign-up's trace, however much later it is published.
                        try await traced(
                            "publish \(event.subject)", ofKind: .producer,
                            context: traceContext(from: event.traceContext),
                            attributes: ["messaging.system": "nats", "messaging.destination.name": event.subject]
                        ) { () async throws(ShippyError) in
                            try await nats.publish(
                                subject: event.subject, payload: event.payload,
                                messageID: event.id.uuidString.lowercased(), headers: currentTraceHeaders())
                        }
                    }) ?? 0
                if published > 0 { logger.debug("published events", metadata: ["count": "\(published)"]) }
                try await Task.sleep(for: published > 0 ? .milliseconds(10) : .milliseconds(250))
            }
        } catch {
            // The loop ends only when the shutdown cancels it: drain and close before the process exits.
            await nats.close()
            throw error
        }
    }

    /// Connects to NATS, retrying for as long as the service runs (sign-ups go on meanwhile).
    private func connect() async throws -> NATSClient {
        let retry = StartupRetry(deadline: .seconds(Int64.max / 2), maximumDelay: .seconds(2))
        var client: NATSClient?
        try await retry.run("NATS at \(nats.redacted)", logger: logger) {
            client = try await UserEvents.connect(nats, name: "user-service")
        }
        return client!
    }
}
