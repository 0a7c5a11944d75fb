import Logging
import ServiceLifecycle
import ShippyContracts
import ShippyMessaging
import ShippyRuntime

/// Consumes `user.created` from the durable JetStream consumer `email-service` (replicas share it, so each
/// event goes to one of them) and sends each new user the welcome mail. A message is acknowledged only
/// after its mail is sent; one that fails is delivered again. An event id already mailed by this process is
/// acknowledged without a second mail.
struct WelcomeMailService: Service {
    static let durable = "email-service"
    let natsURL: String
    let mailer: any Mailer
    let health: HealthService
    let retry: StartupRetry
    let logger: Logger

    /// Unacknowledged messages are redelivered to a replica or the next start when the service stops.
    func run() async throws {
        try await runUntilGracefulShutdown { try await consume() }
    }

    private func consume() async throws {
        var subscribed: (NATSClient, NATSPullSubscription)?
        try await retry.run("NATS at \(NATSClient.redact(natsURL))", logger: logger) {
            let nats = try await UserEvents.connect(url: natsURL, name: "email-service")
            do {
                subscribed = (nats, try await nats.pullSubscription(subject: UserEvents.created, durable: Self.durable))
            } catch {
                await nats.close()
                throw error
            }
        }
        let (nats, subscription) = subscribed!
        health.setServing(true)
        logger.info("subscribed", metadata: ["subject": "\(UserEvents.created)", "durable": "\(Self.durable)"])
        var handled = RecentIDs(capacity: 10_000)
        for await message in subscription.messages {
            if await handle(message.payload, messageID: message.messageID, handled: &handled) { await message.ack() }
        }
        await subscription.close()
        await nats.close()
    }

    /// Mails the event's user unless this event id was mailed already; returns whether to acknowledge.
    func handle(_ payload: [UInt8], messageID: String?, handled: inout RecentIDs) async -> Bool {
        guard let event = try? Shippy_Events_UserCreated(serializedBytes: payload), !event.eventID.isEmpty else {
            logger.warning("dropping a malformed user.created message", metadata: ["message_id": "\(messageID ?? "-")"])
            return true
        }
        guard !handled.contains(event.eventID) else {
            logger.info("duplicate event dropped", metadata: ["event_id": "\(event.eventID)"])
            return true
        }
        do {
            try await mailer.send(WelcomeMail(eventID: event.eventID, recipient: event.email, name: event.name))
            handled.insert(event.eventID)
            return true
        } catch {
            logger.warning(
                "welcome mail failed; it will be retried",
                metadata: ["event_id": "\(event.eventID)", "error": "\(error)"])
            return false
        }
    }
}

/// The most recent ids, bounded: enough to drop redeliveries without growing forever.
struct RecentIDs {
    private var order: [String] = []
    private var members: Set<String> = []
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    func contains(_ id: String) -> Bool { members.contains(id) }

    mutating func insert(_ id: String) {
        guard members.insert(id).inserted else { return }
        order.append(id)
        if order.count > capacity { members.remove(order.removeFirst()) }
    }
}
