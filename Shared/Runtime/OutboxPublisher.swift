import Foundation
import Logging
import Metrics
import ServiceLifecycle
import ShippyDomain
import ShippyMessaging
import ShippyStorage
import ShippyTelemetry

/// Delivers an outbox's events to a NATS JetStream stream, at least once: an event is marked published only after
/// JetStream acknowledged it, and JetStream drops a re-publication of the same event id (its message id)
/// within two minutes. NATS being down never fails a sign-up or a booking: events wait in the database until it
/// is back. An event NATS refuses for good (too large) becomes a dead letter (`outbox_dead_letters`, alerted) and
/// the rest flow. user-service publishes `user.*` from PostgreSQL, consignment-service `consignment.*` from MongoDB.
public struct OutboxPublisher: Service {
    let nats: NATSEndpoint
    let stream: EventStream
    let outbox: any EventOutbox
    /// Opens once the database is connected and prepared; publishing starts then.
    let ready: ReadinessSignal
    /// The service's name, as NATS lists its connection.
    let client: String
    let logger: Logger

    public init(
        nats: NATSEndpoint, stream: EventStream, outbox: any EventOutbox, ready: ReadinessSignal, client: String,
        logger: Logger
    ) {
        self.nats = nats
        self.stream = stream
        self.outbox = outbox
        self.ready = ready
        self.client = client
        self.logger = logger
    }

    /// The outbox's gauges, every few seconds: `outbox_pending_events`, `outbox_oldest_pending_age_seconds`,
    /// `outbox_dead_letters`; `alsoEach` is more upkeep to run at the same pace (pruning).
    public static func gauges(
        of outbox: any EventOutbox, logger: Logger, alsoEach: @escaping @Sendable () async throws -> Void = {}
    ) -> PeriodicWork {
        PeriodicWork("the outbox's backlog", logger: logger) {
            let backlog = try await outbox.backlog()
            Gauge(label: "outbox_pending_events").record(backlog.pending)
            Gauge(label: "outbox_oldest_pending_age_seconds").record(Double(backlog.oldestAge.milliseconds) / 1000)
            Gauge(label: "outbox_dead_letters").record(backlog.deadLettered)
            try await alsoEach()
        }
    }

    /// Unpublished events stay in the outbox when the service stops, for the next start.
    public func run() async throws {
        try await runUntilGracefulShutdown { try await publish() }
    }

    private func publish() async throws {
        try await ready.wait()
        let nats = try await connect()
        do {
            while true {
                let published =
                    (try? await outbox.publishPending(limit: 20) { event in
                        // A span of the change's trace (the sign-up's, the booking's), however much later it is published.
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

    /// Connects to NATS, retrying for as long as the service runs (sign-ups and bookings go on meanwhile).
    private func connect() async throws -> NATSClient {
        let retry = StartupRetry(deadline: .seconds(Int64.max / 2), maximumDelay: .seconds(2))
        var client: NATSClient?
        try await retry.run("NATS at \(nats.redacted)", logger: logger) {
            client = try await stream.connect(nats, name: self.client)
        }
        return client!
    }
}

extension OutboxEvent {
    /// A new event of `subject`: a fresh id (also the payload's `event_id`, which `payload` is given) and the
    /// trace context of the change it announces.
    public static func new(_ subject: String, payload: (_ eventID: String) throws -> [UInt8]) rethrows -> OutboxEvent {
        let id = UUID()
        return OutboxEvent(
            id: id, subject: subject, payload: try payload(id.uuidString.lowercased()),
            traceContext: currentTraceHeaders())
    }
}
