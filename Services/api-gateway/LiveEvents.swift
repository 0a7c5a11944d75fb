import Foundation
import Logging
import Metrics
import ServiceLifecycle
import ShippyContracts
import ShippyDomain
import ShippyIdentity
import ShippyMessaging
import ShippyRuntime
import Synchronization

/// The live streams of `GET /v1/consignment-events`: one per browser tab, at most `perUser` open per user, each
/// ending when its token expires. They are fed by one plain NATS subscription to `consignment.>` per gateway
/// process (what consignment-service publishes from its outbox), each event sent to its owner's open streams.
///
/// A stream misses what is published while it, or the gateway's NATS connection, is not up: the web app lists the
/// consignments when it connects, and the stream only tells it what changes after.
final class LiveConsignmentEvents: Service, Sendable {
    let nats: NATSEndpoint
    /// Streams one user may hold open at once (tabs, devices); past it, a 429.
    let perUser: Int
    /// How often an idle stream sends a comment, so that proxies and browsers keep it open.
    let keepAlive: Duration
    let logger: Logger

    private struct Streams {
        var byUser: [String: [UUID: AsyncStream<String>.Continuation]] = [:]
        /// Set at shutdown: no stream opens after it, so that the HTTP server's drain is not held.
        var closed = false

        var count: Int { byUser.values.reduce(0) { $0 + $1.count } }
    }
    private let streams = Mutex(Streams())
    private static let open = Gauge(label: "gateway_live_streams")
    private static let delivered = Counter(label: "gateway_live_events_total")

    init(nats: NATSEndpoint, perUser: Int, keepAlive: Duration = .seconds(15), logger: Logger) {
        self.nats = nats
        self.perUser = perUser
        self.keepAlive = keepAlive
        self.logger = logger
    }

    /// Opens a stream of `userID`'s consignment events, as server-sent event text: `open` first, then each change,
    /// a comment every `keepAlive`, and `expired` at `expiry`, where it ends.
    /// - Throws: `Problem` 429 when the user has `perUser` streams open; 503 while the gateway shuts down.
    func open(userID: String, until expiry: Date) throws(Problem) -> AsyncStream<String> {
        let id = UUID()
        let (stream, continuation) = AsyncStream<String>.makeStream(bufferingPolicy: .bufferingNewest(256))
        try streams.withLock { streams throws(Problem) in
            guard !streams.closed else { throw Problem.unavailable }
            let held = streams.byUser[userID, default: [:]].count
            guard held < perUser else {
                throw Problem(
                    .tooManyRequests,
                    "you have \(held) live streams open, the most one user may; close a tab or window of Shippy",
                    retryAfter: 5)
            }
            streams.byUser[userID, default: [:]][id] = continuation
            Self.open.record(streams.count)
        }
        continuation.yield(ServerSentEvent.event("open", data: "{}"))
        // However the stream ends (expired, the client gone, shutdown), it stops counting against its user and its
        // clock stops; set before the clock starts, which may end the stream at once.
        let clock = ClockTask()
        continuation.onTermination = { [weak self] _ in
            clock.cancel()
            self?.remove(id, of: userID)
        }
        let keepAlive = self.keepAlive
        clock.start {
            while case let left = expiry.timeIntervalSinceNow, left > 0 {
                try? await Task.sleep(for: min(keepAlive, .milliseconds(Int64(left * 1000) + 1)))
                if Task.isCancelled { return }
                if expiry.timeIntervalSinceNow > 0 { continuation.yield(ServerSentEvent.keepAlive) }
            }
            continuation.yield(ServerSentEvent.event("expired", data: #"{"detail":"the token expired; reconnect"}"#))
            continuation.finish()
        }
        return stream
    }

    private func remove(_ id: UUID, of userID: String) {
        streams.withLock { streams in
            streams.byUser[userID]?.removeValue(forKey: id)
            if streams.byUser[userID]?.isEmpty == true { streams.byUser[userID] = nil }
            Self.open.record(streams.count)
        }
    }

    /// Sends one event to its owner's open streams.
    func deliver(subject: String, payload: [UInt8]) {
        guard let change = ConsignmentChange(subject: subject, payload: payload) else {
            logger.info("ignoring a message that is no consignment event", metadata: ["subject": "\(subject)"])
            return
        }
        let text = ServerSentEvent.event(subject, data: change.json)
        let owners = streams.withLock { Array(($0.byUser[change.userID] ?? [:]).values) }
        for stream in owners { stream.yield(text) }
        if !owners.isEmpty { Self.delivered.increment(by: owners.count) }
    }

    /// Subscribes (retrying NATS for as long as the gateway runs) and delivers until shutdown; then ends every
    /// stream, so that the HTTP server's drain is not held by them.
    func run() async throws {
        defer { finishAll() }
        try await runUntilGracefulShutdown { [self] in
            let (nats, subscription) = try await subscribe()
            do {
                while true {
                    try Task.checkCancellation()
                    do {
                        if let message = try await subscription.next() {
                            deliver(subject: message.subject, payload: message.payload)
                        }
                    } catch {
                        logger.warning(
                            "reading consignment events failed; trying again", metadata: ["error": "\(error)"])
                        try await Task.sleep(for: .seconds(1))
                    }
                }
            } catch {
                await subscription.close()
                await nats.close()
                throw error
            }
        }
    }

    private func finishAll() {
        let all = streams.withLock { streams in
            streams.closed = true
            return streams.byUser.values.flatMap(\.values)
        }
        for stream in all { stream.finish() }
    }

    /// Connects and subscribes, retrying for as long as the gateway runs (the rest of the API works meanwhile).
    private func subscribe() async throws -> (NATSClient, NATSSubscription) {
        let retry = StartupRetry(deadline: .seconds(Int64.max / 2), maximumDelay: .seconds(2))
        var connected: (NATSClient, NATSSubscription)?
        try await retry.run("NATS at \(nats.redacted)", logger: logger) {
            let client = try await NATSClient.connect(nats, name: "api-gateway")
            do {
                connected = (client, try await client.subscribe(subject: ConsignmentEvents.all))
            } catch {
                await client.close()
                throw error
            }
        }
        return connected!
    }
}

/// A stream's keep-alive and expiry task, which its termination cancels, whichever comes first.
private final class ClockTask: Sendable {
    private let task = Mutex<(task: Task<Void, Never>?, cancelled: Bool)>((nil, false))

    func start(_ body: @escaping @Sendable () async -> Void) {
        let started = Task { await body() }
        let cancelled = task.withLock { state in
            state.task = started
            return state.cancelled
        }
        if cancelled { started.cancel() }
    }

    func cancel() {
        let running = task.withLock { state in
            state.cancelled = true
            return state.task
        }
        running?.cancel()
    }
}

/// The text of server-sent events (the WHATWG HTML standard's `text/event-stream`).
enum ServerSentEvent {
    /// One event; `data` is one line of JSON.
    static func event(_ name: String, data: String) -> String { "event: \(name)\ndata: \(data)\n\n" }
    /// A comment: ignored by clients, it keeps the connection from looking idle.
    static let keepAlive = ": keep-alive\n\n"
}

/// What a live stream says of a consignment event: never the owner's address or name.
struct ConsignmentChange: Encodable, Equatable {
    var id: String
    var status: String
    var vesselID: String
    var cancelledBy: String
    var forced: Bool
    /// Whose streams get it; not sent.
    var userID: String

    private enum CodingKeys: String, CodingKey {
        case id, status, vesselID = "vessel_id", cancelledBy = "cancelled_by", forced
    }

    init?(subject: String, payload: [UInt8]) {
        switch subject {
        case ConsignmentEvents.booked:
            guard let event = try? Shippy_Events_ConsignmentBooked(serializedBytes: payload) else { return nil }
            self.init(
                id: event.consignmentID, status: "booked", vesselID: event.vesselID, cancelledBy: "", forced: false,
                userID: event.userID)
        case ConsignmentEvents.cancelled:
            guard let event = try? Shippy_Events_ConsignmentCancelled(serializedBytes: payload) else { return nil }
            self.init(
                id: event.consignmentID, status: "cancelled", vesselID: event.vesselID, cancelledBy: event.cancelledBy,
                forced: event.forced, userID: event.userID)
        default:
            return nil
        }
        guard !id.isEmpty, !userID.isEmpty else { return nil }
    }

    init(id: String, status: String, vesselID: String, cancelledBy: String, forced: Bool, userID: String) {
        self.id = id
        self.status = status
        self.vesselID = vesselID
        self.cancelledBy = cancelledBy
        self.forced = forced
        self.userID = userID
    }

    /// One line of JSON (JSONEncoder escapes control characters, so no line break can end the `data:` early).
    var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}

/// When a token expires, from its `exp` claim, read without checking the signature: the token was just verified
/// by user-service (which answered the caller's identity with it), so only its lifetime is read here.
enum TokenExpiry {
    static func of(_ token: String) -> Date? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { return nil }
        guard let data = Data(base64URL: parts[1]),
            let claims = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let exp = claims["exp"] as? Double
        else { return nil }
        return Date(timeIntervalSince1970: exp)
    }
}
