import ShippyDomain

/// A JetStream stream of Shippy's events: its name, its subjects, how long it drops a re-publication of an event id,
/// and how long it keeps an event (as long as email-service remembers which events it mailed, so that a message
/// old enough to be forgotten there is gone here too).
public struct EventStream: Sendable, Hashable {
    public var name: String
    public var subjects: [String]
    public var duplicateWindow: Duration = .seconds(120)
    public var retention: Duration = .seconds(7 * 86_400)

    public init(name: String, subjects: [String]) {
        self.name = name
        self.subjects = subjects
    }

    /// Connects and makes sure the stream exists (either side may start first); closes the connection
    /// when the stream cannot be made.
    /// - Throws: `ShippyError` `.unavailable`, `.invalidArgument` for a bad URL.
    public func connect(_ endpoint: NATSEndpoint, name client: String) async throws(ShippyError) -> NATSClient {
        let nats = try await NATSClient.connect(endpoint, name: client)
        do {
            try await nats.ensureStream(
                name: name, subjects: subjects, duplicateWindow: duplicateWindow, maxAge: retention)
        } catch {
            await nats.close()
            throw error
        }
        return nats
    }
}

/// The JetStream stream of consignment events: consignment-service publishes to it from its outbox, email-service
/// and the gateway's live streams consume it.
public enum ConsignmentEvents {
    public static let stream = EventStream(name: "CONSIGNMENTS", subjects: ["consignment.>"])
    /// The subject of `ConsignmentBooked`.
    public static let booked = "consignment.booked"
    /// The subject of `ConsignmentCancelled`.
    public static let cancelled = "consignment.cancelled"
    /// Every consignment event.
    public static let all = "consignment.>"
}
