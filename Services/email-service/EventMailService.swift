import Foundation
import Logging
import Metrics
import ServiceLifecycle
import ShippyContracts
import ShippyDomain
import ShippyMessaging
import ShippyRuntime
import ShippyStorage
import ShippyTelemetry
import Synchronization

/// Where each event's mailing is claimed and recorded, so that each event is mailed once: across restarts and
/// replicas (a JetStream key-value bucket in production). A replica claims an event before it sends its mail;
/// another delivery of the event meanwhile (a redelivery to a second replica) finds the claim and waits. A
/// claim older than `lease` belongs to a replica that died mid-send and is taken over.
protocol MailedEvents: Sendable {
    /// - Throws: `ShippyError` `.unavailable` when the store cannot say.
    func claim(_ eventID: String, lease: Duration) async throws(ShippyError) -> MailClaim
    /// The mail is sent: every later delivery is acknowledged without mail.
    func markMailed(_ eventID: String) async throws(ShippyError)
    /// The send failed: the next delivery may claim at once.
    func release(_ eventID: String) async
}

/// What a claim found.
enum MailClaim: Equatable {
    /// This delivery holds the event now: send, then `markMailed`.
    case claimed
    /// Mailed before: acknowledge.
    case mailed
    /// Another delivery holds it; ask again after this long.
    case held(retryIn: Duration)
}

/// A claim's value in the bucket: `sending <unix ms>` while one replica sends; anything else (the empty value
/// of earlier versions included) means mailed.
enum MailClaimValue {
    static let mailed = "mailed"

    static func sending(at now: Date = Date()) -> String { "sending \(Int64(now.timeIntervalSince1970 * 1000))" }

    /// For an existing value: mailed, held (with the wait left), or a stale claim to take over (`nil`).
    static func state(of value: String, lease: Duration, now: Date = Date()) -> MailClaim? {
        guard value.hasPrefix("sending "), let since = Int64(value.dropFirst("sending ".count)) else { return .mailed }
        let age = Duration.milliseconds(Int64(now.timeIntervalSince1970 * 1000) - since)
        return age < lease ? .held(retryIn: max(lease - age, .seconds(1))) : nil
    }
}

extension NATSKeyValue: MailedEvents {
    func claim(_ eventID: String, lease: Duration) async throws(ShippyError) -> MailClaim {
        if await setIfUnchanged(eventID, to: MailClaimValue.sending(), revision: nil) { return .claimed }
        guard let (value, revision) = try await entry(eventID) else {
            return .held(retryIn: .seconds(1))  // the write failed, yet nothing is there: ask again shortly
        }
        if let state = MailClaimValue.state(of: value, lease: lease) { return state }
        let takenOver = await setIfUnchanged(eventID, to: MailClaimValue.sending(), revision: revision)
        return takenOver ? .claimed : .held(retryIn: .seconds(1))
    }

    func markMailed(_ eventID: String) async throws(ShippyError) { try await set(eventID, to: MailClaimValue.mailed) }

    func release(_ eventID: String) async { try? await delete(eventID) }
}

/// How a mail that fails is tried again: after `retryDelay`, doubling with each delivery (at most five
/// minutes), until `maxDeliveries` deliveries; then the message is terminated and the failure logged.
struct DeliveryPolicy: Sendable {
    var maxDeliveries = 5
    var retryDelay: Duration = .seconds(2)
    /// How long one replica's claim on an event holds before another may take it over: longer than any send.
    var claimLease: Duration = .seconds(60)

    func delay(afterDelivery delivery: UInt64) -> Duration {
        min(retryDelay * (1 << min(Int(delivery) - 1, 16)), .seconds(300))
    }
}

/// A stream whose events email-service mails, and its durable consumer there (replicas share it).
struct MailFeed: Sendable, Hashable {
    var stream: EventStream
    var subject: String
    var durable: String

    /// Every user event (`user.>`); the consumer of only `user.created` was `email-service`, and a durable
    /// consumer's subject cannot change, so this one has a name of its own (mails already sent are known by
    /// their event ids, so the events it delivers again are not mailed twice).
    static let users = MailFeed(stream: UserEvents.jetStream, subject: UserEvents.all, durable: "email-service-users")
    /// Every consignment event (`consignment.>`).
    static let consignments = MailFeed(
        stream: ConsignmentEvents.stream, subject: ConsignmentEvents.all, durable: "email-service-consignments")
}

/// The email service's link to NATS for one feed: the connection, the bucket of mailed event ids and the
/// subscription. The readiness path connects it (health is SERVING once every feed is subscribed); the consumer
/// uses it; it is closed after the consumer stopped.
final class MailConsumerConnection: Sendable {
    static let mailedBucket = "EMAIL_MAILED"
    static let mailedMemory: Duration = .seconds(7 * 86_400)

    private struct Parts {
        var nats: NATSClient
        var mailed: NATSKeyValue
        var subscription: NATSPullSubscription
    }
    private let parts = Mutex<Parts?>(nil)
    let nats: NATSEndpoint
    let feed: MailFeed
    let logger: Logger

    init(nats: NATSEndpoint, feed: MailFeed = .users, logger: Logger) {
        self.nats = nats
        self.feed = feed
        self.logger = logger
    }

    /// One attempt; the startup retry repeats it. Idempotent: a second call after success does nothing.
    func connect() async throws {
        guard parts.withLock({ $0 == nil }) else { return }
        let nats = try await feed.stream.connect(self.nats, name: "email-service")
        do {
            let mailed = try await nats.keyValue(bucket: Self.mailedBucket, ttl: Self.mailedMemory)
            let subscription = try await subscribe(nats)
            parts.withLock { $0 = Parts(nats: nats, mailed: mailed, subscription: subscription) }
        } catch {
            await nats.close()
            throw error
        }
    }

    /// Fails while the connection to NATS is down (for readiness).
    func probe() throws(ShippyError) {
        guard parts.withLock({ $0?.nats.isConnected }) == true else {
            throw .unavailable("NATS at \(nats.redacted) is not connected")
        }
    }

    /// The bucket of mailed event ids; call once connected.
    var mailed: NATSKeyValue { parts.withLock { $0!.mailed } }

    func fetch() async throws(ShippyError) -> [NATSMessage] {
        guard let subscription = parts.withLock({ $0?.subscription }) else { throw .unavailable("not connected") }
        return try await subscription.fetch()
    }

    /// The durable consumer's backlog on the server: messages not yet delivered, and delivered but unacknowledged.
    func consumerState() async throws(ShippyError) -> NATSClient.ConsumerState {
        guard let nats = parts.withLock({ $0?.nats }) else { throw .unavailable("not connected") }
        return try await nats.consumerState(stream: feed.stream.name, durable: feed.durable)
    }

    /// Replaces a subscription whose consumer was deleted on the server.
    func resubscribe() async throws(ShippyError) {
        guard let (nats, old) = parts.withLock({ $0.map { ($0.nats, $0.subscription) } }) else { return }
        await old.close()
        let subscription = try await subscribe(nats)
        parts.withLock { $0?.subscription = subscription }
    }

    /// Closes the subscription, the bucket and the connection, to their end even during shutdown.
    func close() async {
        guard
            let parts = parts.withLock({ parts in
                defer { parts = nil }; return parts
            })
        else { return }
        await parts.subscription.close()
        await parts.mailed.close()
        await parts.nats.close()
    }

    private func subscribe(_ nats: NATSClient) async throws(ShippyError) -> NATSPullSubscription {
        let subscription = try await nats.pullSubscription(subject: feed.subject, durable: feed.durable)
        logger.info("subscribed", metadata: ["subject": "\(feed.subject)", "durable": "\(feed.durable)"])
        return subscription
    }
}

/// Consumes one feed's events from its durable JetStream consumer (replicas share it, so each event goes to one of
/// them) and sends the mail each asks for: the welcome mail and the sign-up notice of `user.*`, the booking
/// confirmation and the cancellation notice of `consignment.*`. A message is acknowledged once its
/// mail is sent (or its event was mailed before: the ids live in the JetStream bucket `EMAIL_MAILED` for a
/// week); a failed mail is delivered again with back-off, and terminated after the last delivery. Every
/// message is released exactly once, and the acknowledgements complete during shutdown.
struct EventMailService: Service {
    let connection: MailConsumerConnection
    let ready: ReadinessSignal
    let mailer: any Mailer
    let policy: DeliveryPolicy
    let logger: Logger

    /// The email service's services, in start order, for `main` and the tests alike: readiness (NATS, the
    /// bucket, a subscription per feed), a consumer per feed with its lag gauges, and the gRPC server that answers
    /// health.
    static func services(
        nats: NATSEndpoint,
        feeds: [MailFeed] = [.users, .consignments],
        mailer: any Mailer,
        policy: DeliveryPolicy,
        server: ServerConfiguration,
        logger: Logger
    ) -> (health: HealthService, services: [(name: String, service: any Service)]) {
        let connections = feeds.map { MailConsumerConnection(nats: nats, feed: $0, logger: logger) }
        let brokers = connections.map { connection in
            Dependency(
                name: "NATS at \(nats.redacted) (\(connection.feed.stream.name))",
                connect: { try await connection.connect() },
                close: { await connection.close() }, probe: { try connection.probe() })
        }
        let assembly = ServiceAssembly(
            serving: nil, healthName: "shippy.EmailService", handler: nil, verifier: nil, dependencies: brokers,
            configuration: server, logger: logger)
        let consumers = connections.flatMap { connection -> [(name: String, service: any Service)] in
            let consumer = EventMailService(
                connection: connection, ready: assembly.readiness.ready, mailer: mailer, policy: policy, logger: logger)
            let durable = connection.feed.durable
            let lag = PeriodicWork("the consumer's lag (\(durable))", logger: logger) {
                let state = try await connection.consumerState()
                Gauge(label: "email_consumer_pending", dimensions: [("durable", durable)])
                    .record(Int(clamping: state.pending))
                Gauge(label: "email_consumer_ack_pending", dimensions: [("durable", durable)])
                    .record(Int(state.acknowledgementsPending))
            }
            return [("mail \(durable)", consumer), ("consumer-gauges \(durable)", lag)]
        }
        return (assembly.health, assembly.services(consumers))
    }

    /// Unacknowledged messages are redelivered to a replica or the next start when the service stops.
    func run() async throws {
        try await runUntilGracefulShutdown { try await consume() }
    }

    private func consume() async throws {
        try await ready.wait()
        let mailed = connection.mailed
        while true {
            try Task.checkCancellation()
            let batch: [NATSMessage]
            do {
                batch = try await connection.fetch()
            } catch  where error.code == .notFound {
                logger.warning("the JetStream consumer was deleted; subscribing again")
                try await connection.resubscribe()
                continue
            } catch {
                logger.warning("fetching messages failed; trying again", metadata: ["error": "\(error)"])
                try await Task.sleep(for: .seconds(1))
                continue
            }
            for message in batch { await process(message, mailed: mailed) }
        }
    }

    /// Handles one message and answers the server: acknowledged, delivered again later, or terminated. It runs
    /// in a consumer span that continues the publisher's trace (the sign-up's, the booking's), from the message's
    /// headers.
    func process(_ message: NATSMessage, mailed: any MailedEvents) async {
        if message.deliveries > 1 { Self.redeliveries.increment() }
        await traced(
            "process \(message.subject)", ofKind: .consumer, context: traceContext(from: message.traceHeaders),
            attributes: ["messaging.system": "nats", "messaging.destination.name": message.subject]
        ) { () async in
            await settle(message, mailed: mailed)
        }
    }

    /// `nats_consumed_total{subject,outcome}` and `email_redeliveries_total` (deliveries after the first).
    static let redeliveries = Counter(label: "email_redeliveries_total")
    static func consumed(_ outcome: String, subject: String) -> Counter {
        Counter(label: "nats_consumed_total", dimensions: [("subject", subject), ("outcome", outcome)])
    }

    private func settle(_ message: NATSMessage, mailed: any MailedEvents) async {
        let consumed = { (outcome: String) in Self.consumed(outcome, subject: message.subject).increment() }
        switch await handle(message.payload, subject: message.subject, messageID: message.messageID, mailed: mailed) {
        case .done:
            consumed("acked")
            await message.ack()
        case .later(let eventID, let delay):
            logger.info(
                "another delivery is mailing this event; asking again later",
                metadata: ["event_id": "\(eventID)", "in_ms": "\(delay.milliseconds)"])
            consumed("held")
            await message.nak(delay: delay)
        case .retry(let eventID) where message.deliveries >= UInt64(policy.maxDeliveries):
            logger.error(
                "giving up on a mail",
                metadata: ["event_id": "\(eventID)", "deliveries": "\(message.deliveries)"])
            consumed("terminated")
            await message.term()
        case .retry(let eventID):
            let delay = policy.delay(afterDelivery: message.deliveries)
            logger.info(
                "a mail will be tried again",
                metadata: [
                    "event_id": "\(eventID)", "delivery": "\(message.deliveries)", "in_ms": "\(delay.milliseconds)",
                ])
            consumed("retried")
            await message.nak(delay: delay)
        }
    }

    enum Outcome: Equatable {
        /// Mailed now or before, or not an event at all: acknowledge.
        case done
        /// Try again later (the mailer or the store of mailed ids failed).
        case retry(eventID: String)
        /// Another delivery holds the event: ask again after `delay` (not counted as a failure).
        case later(eventID: String, delay: Duration)
    }

    /// The mail an event asks for, or `nil` for a message that is not one (logged, and acknowledged).
    func mail(for payload: [UInt8], subject: String, messageID: String?) -> EventMail? {
        let mail: EventMail?
        switch subject {
        case UserEvents.created:
            mail = (try? Shippy_Events_UserCreated(serializedBytes: payload)).map {
                EventMail(eventID: $0.eventID, recipient: $0.email, name: $0.name)
            }
        case UserEvents.signUpRepeated:
            mail = (try? Shippy_Events_SignUpRepeated(serializedBytes: payload)).map {
                EventMail(eventID: $0.eventID, recipient: $0.email, name: $0.name, kind: .signUpRepeated)
            }
        case ConsignmentEvents.booked:
            mail = (try? Shippy_Events_ConsignmentBooked(serializedBytes: payload)).map {
                let shipment = EventMail.Shipment(
                    consignmentID: $0.consignmentID, vesselID: $0.vesselID, description: $0.description_p,
                    containers: Int($0.containers), weight: Int($0.weight))
                return EventMail(eventID: $0.eventID, recipient: $0.email, name: $0.name, kind: .booked(shipment))
            }
        case ConsignmentEvents.cancelled:
            mail = (try? Shippy_Events_ConsignmentCancelled(serializedBytes: payload)).map {
                let shipment = EventMail.Shipment(consignmentID: $0.consignmentID, vesselID: $0.vesselID)
                return EventMail(
                    eventID: $0.eventID, recipient: $0.email, name: $0.name,
                    kind: .cancelled(shipment, forced: $0.forced))
            }
        default:
            logger.info("no mail for this subject", metadata: ["subject": "\(subject)"])
            return nil
        }
        guard let mail, !mail.eventID.isEmpty else {
            logger.warning("dropping a malformed \(subject) message", metadata: ["message_id": "\(messageID ?? "-")"])
            return nil
        }
        // user-service stores only canonical addresses (and tokens carry them); anything else could be a header of
        // its own in `To:`. Consignments booked before their owner's contact was kept have none: no mail.
        guard (try? EmailAddress.canonical(mail.recipient)) != nil else {
            logger.warning("dropping an event whose address is not valid", metadata: ["event_id": "\(mail.eventID)"])
            return nil
        }
        return mail
    }

    /// Mails the event's user unless this event was mailed already or another delivery is mailing it.
    func handle(
        _ payload: [UInt8], subject: String = UserEvents.created, messageID: String?, mailed: any MailedEvents
    ) async -> Outcome {
        guard let event = mail(for: payload, subject: subject, messageID: messageID) else { return .done }
        do {
            switch try await mailed.claim(event.eventID, lease: policy.claimLease) {
            case .claimed: break
            case .mailed:
                logger.info("duplicate event dropped", metadata: ["event_id": "\(event.eventID)"])
                return .done
            case .held(let delay):
                return .later(eventID: event.eventID, delay: delay)
            }
        } catch {
            logger.warning(
                "cannot tell whether the event was mailed",
                metadata: ["event_id": "\(event.eventID)", "error": "\(error)"])
            return .retry(eventID: event.eventID)
        }
        do {
            try await mailer.send(event)
        } catch {
            logger.warning("a mail failed", metadata: ["event_id": "\(event.eventID)", "error": "\(error)"])
            await mailed.release(event.eventID)
            return .retry(eventID: event.eventID)
        }
        do {
            try await mailed.markMailed(event.eventID)
        } catch {
            // The mail is sent and the claim stands: a redelivery before the lease ends waits, and the mailers
            // write by event id (Message-ID), so one after it is one mail still for the file mailer.
            logger.warning(
                "the mailed event could not be recorded",
                metadata: ["event_id": "\(event.eventID)", "error": "\(error)"])
        }
        return .done
    }
}
