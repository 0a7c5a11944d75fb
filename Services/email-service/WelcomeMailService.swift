import Logging
import ServiceLifecycle
import ShippyContracts
import ShippyDomain
import ShippyMessaging
import ShippyRuntime

/// Where the ids of mailed events are kept, so that each event is mailed once: across restarts and replicas
/// (a JetStream key-value bucket in production).
protocol MailedEvents: Sendable {
    func contains(_ eventID: String) async throws(ShippyError) -> Bool
    func record(_ eventID: String) async throws(ShippyError)
}

extension NATSKeyValue: MailedEvents {
    func record(_ eventID: String) async throws(ShippyError) { try await set(eventID) }
}

/// How a welcome mail that fails is tried again: after `retryDelay`, doubling with each delivery (at most five
/// minutes), until `maxDeliveries` deliveries; then the message is terminated and the failure logged.
struct DeliveryPolicy: Sendable {
    var maxDeliveries = 5
    var retryDelay: Duration = .seconds(2)

    func delay(afterDelivery delivery: UInt64) -> Duration {
        min(retryDelay * (1 << min(Int(delivery) - 1, 16)), .seconds(300))
    }
}

/// Consumes `user.created` from the durable JetStream consumer `email-service` (replicas share it, so each
/// event goes to one of them) and sends each new user the welcome mail. A message is acknowledged once its
/// mail is sent (or its event was mailed before: the ids live in the JetStream bucket `EMAIL_MAILED` for a
/// week); a failed mail is delivered again with back-off, and terminated after the last delivery. Every
/// message is released exactly once, and the acknowledgements and the close complete during shutdown.
struct WelcomeMailService: Service {
    static let durable = "email-service"
    static let mailedBucket = "EMAIL_MAILED"
    static let mailedMemory: Duration = .seconds(7 * 86_400)

    let natsURL: String
    let mailer: any Mailer
    let policy: DeliveryPolicy
    let health: HealthService
    let retry: StartupRetry
    let logger: Logger

    /// Unacknowledged messages are redelivered to a replica or the next start when the service stops.
    func run() async throws {
        try await runUntilGracefulShutdown { try await consume() }
    }

    private func consume() async throws {
        var connected: (NATSClient, NATSKeyValue)?
        try await retry.run("NATS at \(NATSClient.redact(natsURL))", logger: logger) {
            let nats = try await UserEvents.connect(url: natsURL, name: "email-service")
            do {
                connected = (nats, try await nats.keyValue(bucket: Self.mailedBucket, ttl: Self.mailedMemory))
            } catch {
                await nats.close()
                throw error
            }
        }
        let (nats, mailed) = connected!
        var subscription: NATSPullSubscription?
        do {
            subscription = try await subscribe(nats)
            health.setServing(true)
            while true {
                try Task.checkCancellation()
                let batch: [NATSMessage]
                do {
                    batch = try await subscription!.fetch()
                } catch  where error.code == .notFound {
                    logger.warning("the JetStream consumer was deleted; subscribing again")
                    await subscription?.close()
                    subscription = nil
                    subscription = try await subscribe(nats)
                    continue
                } catch {
                    logger.warning("fetching messages failed; trying again", metadata: ["error": "\(error)"])
                    try await Task.sleep(for: .seconds(1))
                    continue
                }
                for message in batch { await process(message, mailed: mailed) }
            }
        } catch {
            // Shutdown cancelled the loop: close what was opened, to its end, before the process exits.
            await subscription?.close()
            await mailed.close()
            await nats.close()
            throw error
        }
    }

    private func subscribe(_ nats: NATSClient) async throws(ShippyError) -> NATSPullSubscription {
        let subscription = try await nats.pullSubscription(subject: UserEvents.created, durable: Self.durable)
        logger.info("subscribed", metadata: ["subject": "\(UserEvents.created)", "durable": "\(Self.durable)"])
        return subscription
    }

    /// Handles one message and answers the server: acknowledged, delivered again later, or terminated.
    func process(_ message: NATSMessage, mailed: any MailedEvents) async {
        switch await handle(message.payload, messageID: message.messageID, mailed: mailed) {
        case .done:
            await message.ack()
        case .retry(let eventID) where message.deliveries >= UInt64(policy.maxDeliveries):
            logger.error(
                "giving up on a welcome mail",
                metadata: ["event_id": "\(eventID)", "deliveries": "\(message.deliveries)"])
            await message.term()
        case .retry(let eventID):
            let delay = policy.delay(afterDelivery: message.deliveries)
            logger.info(
                "welcome mail will be tried again",
                metadata: [
                    "event_id": "\(eventID)", "delivery": "\(message.deliveries)", "in_ms": "\(delay.milliseconds)",
                ])
            await message.nak(delay: delay)
        }
    }

    enum Outcome: Equatable {
        /// Mailed now or before, or not an event at all: acknowledge.
        case done
        /// Try again later (the mailer or the store of mailed ids failed).
        case retry(eventID: String)
    }

    /// Mails the event's user unless this event was mailed already.
    func handle(_ payload: [UInt8], messageID: String?, mailed: any MailedEvents) async -> Outcome {
        guard let event = try? Shippy_Events_UserCreated(serializedBytes: payload), !event.eventID.isEmpty else {
            logger.warning("dropping a malformed user.created message", metadata: ["message_id": "\(messageID ?? "-")"])
            return .done
        }
        do {
            if try await mailed.contains(event.eventID) {
                logger.info("duplicate event dropped", metadata: ["event_id": "\(event.eventID)"])
                return .done
            }
        } catch {
            logger.warning(
                "cannot tell whether the event was mailed",
                metadata: ["event_id": "\(event.eventID)", "error": "\(error)"])
            return .retry(eventID: event.eventID)
        }
        do {
            try await mailer.send(WelcomeMail(eventID: event.eventID, recipient: event.email, name: event.name))
        } catch {
            logger.warning("welcome mail failed", metadata: ["event_id": "\(event.eventID)", "error": "\(error)"])
            return .retry(eventID: event.eventID)
        }
        do {
            try await mailed.record(event.eventID)
        } catch {
            // The mail is sent: acknowledge anyway. Only a redelivery of this very event could mail it twice.
            logger.warning(
                "the mailed event could not be recorded",
                metadata: ["event_id": "\(event.eventID)", "error": "\(error)"])
        }
        return .done
    }
}
