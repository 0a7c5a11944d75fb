import Foundation
import ShippyDomain

/// An event to publish, stored in the same transaction as the change it announces (a transactional outbox).
public struct OutboxEvent: Sendable, Hashable {
    /// Also the NATS message id, so that consumers can drop a redelivery.
    public var id: UUID
    public var subject: String
    public var payload: [UInt8]
    /// The trace context of the change (`traceparent`, …), so that the consumer's span joins its trace even when
    /// the event is published later; empty when tracing is off.
    public var traceContext: [String: String]

    public init(id: UUID, subject: String, payload: [UInt8], traceContext: [String: String] = [:]) {
        self.id = id
        self.subject = subject
        self.payload = payload
        self.traceContext = traceContext
    }
}

/// The outbox's backlog: events not yet published, how long the oldest has waited, and the events set aside
/// because the broker refused them for good (dead letters).
public struct OutboxBacklog: Sendable, Hashable {
    public var pending: Int
    public var oldestAge: Duration
    public var deadLettered: Int

    public init(pending: Int, oldestAge: Duration, deadLettered: Int = 0) {
        self.pending = pending
        self.oldestAge = oldestAge
        self.deadLettered = deadLettered
    }
}

/// Events stored with the changes they announce (a transactional outbox), waiting to be published: what
/// `OutboxPublisher` drains.
public protocol EventOutbox: Sendable {
    /// Publishes the pending events, oldest first, at most `limit` of them, each under its own deadline,
    /// marking each one that `publish` succeeds for; stops at the first failure, keeping the rest for the next
    /// round, in order. An event for which `publish` throws `ShippyError` `.invalidArgument` (the broker will
    /// never take it) is set aside as a dead letter, logged and counted, and the rest go on.
    /// - Returns: how many were published.
    func publishPending(
        limit: Int,
        _ publish: @escaping @Sendable (OutboxEvent) async throws -> Void
    ) async throws(ShippyError) -> Int

    /// How many events wait, the age of the oldest (zero when none waits), and how many are dead letters.
    func backlog() async throws(ShippyError) -> OutboxBacklog
}

/// An outbox that keeps events after they are published (user-service's table), until they are pruned.
public protocol OutboxRepository: EventOutbox {
    /// Deletes the events published more than `age` ago.
    /// - Returns: how many were deleted.
    func prunePublished(olderThan age: Duration) async throws(ShippyError) -> Int
}
