import CNats
import Logging
import Metrics
import NIOPosix
import ShippyDomain
import Synchronization

/// Where NATS is, and whom its certificate must come from. A `tls://` URL, or `authorities` given, makes the
/// connection TLS: the server's certificate from one of `authorities` (a PEM file; else the system's) and naming the
/// host dialled. Credentials go in the URL (`nats://user:password@host:4222`).
public struct NATSEndpoint: Sendable, Hashable {
    public var url: String
    public var authorities: String?

    public init(url: String, authorities: String? = nil) {
        self.url = url
        self.authorities = authorities
    }

    /// The URL without credentials, for logs and messages.
    public var redacted: String { NATSClient.redact(url) }
}

/// A connection to NATS with JetStream, over the NATS C client. Every blocking C call runs on a small
/// thread pool of its own, never on Swift's cooperative executor. The C client reconnects by itself after
/// the server restarts (without limit, every half second).
public final class NATSClient: Sendable {
    private let connection: CHandle
    private let jetStream: CHandle
    private let threads: NIOThreadPool
    /// The server's URL without credentials, for logs and messages.
    public let redactedURL: String

    private init(connection: CHandle, jetStream: CHandle, threads: NIOThreadPool, redactedURL: String) {
        self.connection = connection
        self.jetStream = jetStream
        self.threads = threads
        self.redactedURL = redactedURL
    }

    /// Connects once; callers retry with `StartupRetry`.
    /// - Throws: `ShippyError` `.unavailable` when the server does not answer, `.invalidArgument` for a bad URL.
    public static func connect(_ endpoint: NATSEndpoint, name: String) async throws(ShippyError) -> NATSClient {
        let url = endpoint.url
        let redacted = endpoint.redacted
        let threads = NIOThreadPool(numberOfThreads: 2)
        threads.start()
        do {
            let (connection, jetStream) = try await threads.runIfActive { () throws -> (CHandle, CHandle) in
                var options: OpaquePointer?
                try check(natsOptions_Create(&options), "NATS options")
                defer { natsOptions_Destroy(options) }
                try check(natsOptions_SetURL(options, url), "NATS URL \(redacted)", code: .invalidArgument)
                if let authorities = endpoint.authorities {
                    try check(natsOptions_SetSecure(options, true), "NATS TLS")
                    try check(
                        natsOptions_LoadCATrustedCertificates(options, authorities), "NATS_CA \(authorities)",
                        code: .invalidArgument)
                }
                _ = natsOptions_SetName(options, name)
                _ = natsOptions_SetMaxReconnect(options, -1)
                _ = natsOptions_SetReconnectWait(options, 500)
                _ = natsOptions_SetTimeout(options, 2000)
                var connection: OpaquePointer?
                try check(natsConnection_Connect(&connection, options), "NATS at \(redacted)")
                var jetStream: OpaquePointer?
                guard natsConnection_JetStream(&jetStream, connection, nil) == NATS_OK, let connection, let jetStream
                else {
                    natsConnection_Destroy(connection)
                    throw ShippyError.unavailable("NATS at \(redacted) has no JetStream")
                }
                return (CHandle(connection), CHandle(jetStream))
            }
            return NATSClient(connection: connection, jetStream: jetStream, threads: threads, redactedURL: redacted)
        } catch {
            try? await threads.shutdownGracefully()
            throw (error as? ShippyError) ?? .unavailable("NATS at \(redacted) is unavailable")
        }
    }

    /// Creates the stream, or updates it to this configuration. Idempotent.
    /// - Parameters:
    ///   - duplicateWindow: how long JetStream drops a second publication of the same message id.
    ///   - maxAge: how long a message is kept (acknowledged or not).
    public func ensureStream(
        name: String, subjects: [String], duplicateWindow: Duration, maxAge: Duration
    ) async throws(ShippyError) {
        try await run("create stream \(name)") { [jetStream] () throws(ShippyError) in
            try withCStrings([name] + subjects) { strings throws(ShippyError) in
                var config = jsStreamConfig()
                jsStreamConfig_Init(&config)
                config.Name = strings[0]
                let subjectList = UnsafeMutablePointer<UnsafePointer<CChar>?>.allocate(capacity: subjects.count)
                defer { subjectList.deallocate() }
                for index in subjects.indices { subjectList[index] = strings[index + 1] }
                config.Subjects = subjectList
                config.SubjectsLen = Int32(subjects.count)
                config.Storage = js_FileStorage
                config.Duplicates = duplicateWindow.milliseconds * 1_000_000
                config.MaxAge = maxAge.milliseconds * 1_000_000
                var info: UnsafeMutablePointer<jsStreamInfo>?
                var code = jsErrCode(0)
                var status = js_AddStream(&info, jetStream.raw, &config, nil, &code)
                if status != NATS_OK {
                    status = js_UpdateStream(&info, jetStream.raw, &config, nil, &code)
                }
                jsStreamInfo_Destroy(info)
                try check(status, "JetStream stream \(name)")
            }
        }
    }

    /// Publishes to JetStream and waits for the server's acknowledgement: once this returns, the message
    /// is stored. The same `messageID` published again within the duplicate window is dropped by the server.
    /// - Throws: `ShippyError` `.invalidArgument` for a message the server will never take (larger than its
    ///   maximum payload), `.unavailable` otherwise.
    /// `headers` travel with the message (the trace context). Counted in `nats_published_total{subject,outcome}`.
    public func publish(
        subject: String, payload: [UInt8], messageID: String, headers: [String: String] = [:]
    ) async throws(ShippyError) {
        do {
            try await run("publish to \(subject)") { [jetStream, redactedURL] () throws(ShippyError) in
                var message: OpaquePointer?
                let created = payload.withUnsafeBytes { bytes in
                    natsMsg_Create(
                        &message, subject, nil, bytes.baseAddress?.assumingMemoryBound(to: CChar.self),
                        Int32(bytes.count))
                }
                try check(created, "NATS at \(redactedURL)")
                defer { natsMsg_Destroy(message) }
                for (key, value) in headers { natsMsgHeader_Set(message, key, value) }
                try withCStrings([messageID]) { strings throws(ShippyError) in
                    var options = jsPubOptions()
                    jsPubOptions_Init(&options)
                    options.MsgId = strings[0]
                    options.MaxWait = 2000
                    var ack: UnsafeMutablePointer<jsPubAck>?
                    var code = jsErrCode(0)
                    let status = js_PublishMsg(&ack, jetStream.raw, message, &options, &code)
                    jsPubAck_Destroy(ack)
                    // Too large for the server: no retry will ever get it through.
                    try check(
                        status, "NATS at \(redactedURL)",
                        code: status == NATS_MAX_PAYLOAD ? .invalidArgument : .unavailable)
                }
            }
            Self.published(subject, "ok").increment()
        } catch {
            Self.published(subject, "failed").increment()
            throw error
        }
    }

    private static func published(_ subject: String, _ outcome: String) -> Counter {
        Counter(label: "nats_published_total", dimensions: [("subject", subject), ("outcome", outcome)])
    }

    /// A durable pull consumer on `subject`: replicas that use the same `durable` name share its messages,
    /// each delivered to one of them, and redelivered when not acknowledged within `ackWait`.
    public func pullSubscription(
        subject: String,
        durable: String,
        ackWait: Duration = .seconds(30)
    ) async throws(ShippyError) -> NATSPullSubscription {
        let subscription = try await run("subscribe to \(subject)") { [jetStream] () throws(ShippyError) -> CHandle in
            try withCStrings([subject, durable]) { strings throws(ShippyError) -> CHandle in
                var options = jsSubOptions()
                jsSubOptions_Init(&options)
                options.Config.AckPolicy = js_AckExplicit
                options.Config.AckWait = ackWait.milliseconds * 1_000_000
                var subscription: OpaquePointer?
                var code = jsErrCode(0)
                try check(
                    js_PullSubscribe(&subscription, jetStream.raw, strings[0], strings[1], nil, &options, &code),
                    "JetStream consumer \(durable)")
                return CHandle(subscription!)
            }
        }
        return NATSPullSubscription(subscription: subscription, threads: threads)
    }

    /// A plain (core NATS) subscription to `subject`: every message published on it while the connection is up,
    /// none kept for later (JetStream's publications included, as they are published on their subjects).
    public func subscribe(subject: String) async throws(ShippyError) -> NATSSubscription {
        let subscription = try await run("subscribe to \(subject)") { [connection] () throws(ShippyError) -> CHandle in
            var subscription: OpaquePointer?
            try check(natsConnection_SubscribeSync(&subscription, connection.raw, subject), "NATS subscription")
            return CHandle(subscription!)
        }
        return NATSSubscription(subscription: subscription, threads: threads)
    }

    /// How far a durable consumer is behind: messages not yet delivered, delivered but not acknowledged, and
    /// redelivered ones.
    public struct ConsumerState: Sendable, Hashable {
        public var pending: UInt64
        public var acknowledgementsPending: Int64
        public var redelivered: Int64
    }

    /// - Throws: `ShippyError` `.unavailable`, or `.notFound` when the consumer does not exist.
    public func consumerState(stream: String, durable: String) async throws(ShippyError) -> ConsumerState {
        try await run("consumer info of \(durable)") { [jetStream] () throws(ShippyError) -> ConsumerState in
            var info: UnsafeMutablePointer<jsConsumerInfo>?
            var code = jsErrCode(0)
            let status = js_GetConsumerInfo(&info, jetStream.raw, stream, durable, nil, &code)
            defer { jsConsumerInfo_Destroy(info) }
            if status == NATS_NOT_FOUND { throw ShippyError.notFound("no JetStream consumer \(durable)") }
            try check(status, "JetStream consumer \(durable)")
            guard let info = info?.pointee else { throw ShippyError.unavailable("JetStream consumer \(durable)") }
            return ConsumerState(
                pending: info.NumPending, acknowledgementsPending: info.NumAckPending, redelivered: info.NumRedelivered)
        }
    }

    /// The key-value bucket `name`, created when missing; its keys expire after `ttl`.
    public func keyValue(bucket name: String, ttl: Duration) async throws(ShippyError) -> NATSKeyValue {
        let store = try await run("key-value bucket \(name)") { [jetStream] () throws(ShippyError) -> CHandle in
            var store: OpaquePointer?
            if js_KeyValue(&store, jetStream.raw, name) == NATS_OK, let store { return CHandle(store) }
            var config = kvConfig()
            kvConfig_Init(&config)
            return try withCStrings([name]) { strings throws(ShippyError) -> CHandle in
                config.Bucket = strings[0]
                config.History = 1
                config.TTL = ttl.milliseconds * 1_000_000
                config.StorageType = js_FileStorage
                try check(js_CreateKeyValue(&store, jetStream.raw, &config), "JetStream key-value bucket \(name)")
                return CHandle(store!)
            }
        }
        return NATSKeyValue(store: store, threads: threads)
    }

    /// Whether the connection is up now (the C client reconnects by itself after the server comes back).
    public var isConnected: Bool { natsConnection_Status(connection.raw) == NATS_CONN_STATUS_CONNECTED }

    /// Lets pending work finish (drain), then closes the connection and its threads. Runs to its end even
    /// when the calling task is cancelled (as at shutdown).
    public func close() async {
        await runToCompletion(threads) { [connection, jetStream] in
            // Draining runs in the C client's threads: wait for it (bounded) before destroying the connection,
            // or acknowledgements and publications still buffered are lost.
            if natsConnection_DrainTimeout(connection.raw, 5_000) == NATS_OK {
                for _ in 0..<600 where !natsConnection_IsClosed(connection.raw) { nats_Sleep(10) }
            }
            jsCtx_Destroy(jetStream.raw)
            natsConnection_Destroy(connection.raw)
        }
        try? await threads.shutdownGracefully()
    }

    private func run<T: Sendable>(
        _ operation: String, _ body: @escaping @Sendable () throws(ShippyError) -> T
    ) async throws(ShippyError) -> T {
        try await runOnPool(threads, operation, body)
    }

    /// Removes `user:password@` from a URL.
    public static func redact(_ url: String) -> String {
        redactingCredentials(url)
    }
}

/// A message from a pull subscription (or a plain one, which needs no answer). Its C message is released exactly
/// once, whatever happens to it: acknowledged, negatively acknowledged (delivered again after a delay), terminated
/// (never delivered again), or dropped (released unacknowledged when the last reference goes; the server delivers
/// a pull consumer's message again after its ack wait).
public final class NATSMessage: Sendable {
    /// Messages whose C message is not yet released, in this process: a gauge that returns to zero when
    /// nothing leaks.
    public static var live: Int { liveCount.load(ordering: .relaxed) }
    private static let liveCount = Atomic<Int>(0)

    private let message: Mutex<CHandle?>
    private let threads: NIOThreadPool
    public let payload: [UInt8]
    public let subject: String
    /// The publisher's `Nats-Msg-Id` header, if any.
    public let messageID: String?
    /// How many times the server has delivered this message, this time included.
    public let deliveries: UInt64
    /// The W3C trace context the publisher sent (`traceparent`, `tracestate`), to continue its trace.
    public let traceHeaders: [String: String]

    init(_ message: OpaquePointer, threads: NIOThreadPool) {
        self.message = Mutex(CHandle(message))
        self.threads = threads
        Self.liveCount.add(1, ordering: .relaxed)
        payload = payloadBytes(of: message)
        subject = natsMsg_GetSubject(message).map { String(cString: $0) } ?? ""
        var value: UnsafePointer<CChar>?
        messageID =
            natsMsgHeader_Get(message, "Nats-Msg-Id", &value) == NATS_OK ? value.map { String(cString: $0) } : nil
        var metadata: UnsafeMutablePointer<jsMsgMetaData>?
        deliveries = natsMsg_GetMetaData(&metadata, message) == NATS_OK ? metadata?.pointee.NumDelivered ?? 1 : 1
        jsMsgMetaData_Destroy(metadata)
        var headers: [String: String] = [:]
        for key in ["traceparent", "tracestate"] where natsMsgHeader_Get(message, key, &value) == NATS_OK {
            headers[key] = value.map { String(cString: $0) }
        }
        traceHeaders = headers
    }

    deinit {
        if let message = message.withLock({ $0.take() }) {
            natsMsg_Destroy(message.raw)
            Self.liveCount.subtract(1, ordering: .relaxed)
        }
    }

    /// Acknowledges it: the server never delivers it again. Completes even when the calling task is cancelled.
    public func ack() async {
        await settle { natsMsg_Ack($0, nil) }
    }

    /// Asks the server to deliver it again after `delay`.
    public func nak(delay: Duration) async {
        let milliseconds = delay.milliseconds  // the C client takes milliseconds here
        await settle { natsMsg_NakWithDelay($0, milliseconds, nil) }
    }

    /// Tells the server to stop delivering it.
    public func term() async {
        await settle { natsMsg_Term($0, nil) }
    }

    /// Sends one answer to the server and releases the message; later calls do nothing.
    private func settle(_ answer: @escaping @Sendable (OpaquePointer) -> natsStatus) async {
        guard let message = message.withLock({ $0.take() }) else { return }
        await runToCompletion(threads) {
            _ = answer(message.raw)
            natsMsg_Destroy(message.raw)
        }
        Self.liveCount.subtract(1, ordering: .relaxed)
    }
}

/// A durable JetStream pull consumer.
public final class NATSPullSubscription: Sendable {
    private let subscription: CHandle
    private let threads: NIOThreadPool

    init(subscription: CHandle, threads: NIOThreadPool) {
        self.subscription = subscription
        self.threads = threads
    }

    /// The next messages, at most `limit`, waiting up to `wait` for the first; none when none came.
    /// The subscription survives a server restart: the C client reconnects and the durable consumer lives on
    /// the server.
    /// - Throws: `ShippyError` `.unavailable` (the server is away), `.notFound` (the consumer was deleted:
    ///   subscribe again).
    public func fetch(limit: Int = 16, wait: Duration = .seconds(1)) async throws(ShippyError) -> [NATSMessage] {
        let milliseconds = wait.milliseconds
        do {
            return try await threads.runIfActive { [subscription, threads] () throws(ShippyError) -> [NATSMessage] in
                var list = natsMsgList()
                var code = jsErrCode(0)
                let status = natsSubscription_Fetch(&list, subscription.raw, Int32(limit), milliseconds, &code)
                if status == NATS_TIMEOUT { return [] }
                if status == NATS_NOT_FOUND || code == JSConsumerNotFoundErr {
                    throw ShippyError.notFound("the JetStream consumer is gone")
                }
                try check(status, "JetStream fetch")
                var messages: [NATSMessage] = []
                for index in 0..<Int(list.Count) {
                    if let message = list.Msgs[index] {
                        messages.append(NATSMessage(message, threads: threads))
                        list.Msgs[index] = nil  // now owned by the NATSMessage; the list must not free it
                    }
                }
                natsMsgList_Destroy(&list)
                return messages
            }
        } catch let error as ShippyError {
            throw error
        } catch {
            throw .unavailable("NATS client is shut down")
        }
    }

    /// Stops the subscription without deleting the durable consumer, so that replicas and restarts resume it.
    public func close() async {
        await runToCompletion(threads) { [subscription] in natsSubscription_Destroy(subscription.raw) }
    }
}

/// A plain subscription: messages as they are published, none acknowledged or kept.
public final class NATSSubscription: Sendable {
    private let subscription: CHandle
    private let threads: NIOThreadPool

    init(subscription: CHandle, threads: NIOThreadPool) {
        self.subscription = subscription
        self.threads = threads
    }

    /// The next message, waiting up to `wait`; `nil` when none came. Survives a server restart (the C client
    /// reconnects and subscribes again); what was published meanwhile is missed.
    /// - Throws: `ShippyError` `.unavailable` when the subscription or the client is closed.
    public func next(wait: Duration = .seconds(1)) async throws(ShippyError) -> NATSMessage? {
        let milliseconds = wait.milliseconds
        return try await runOnPool(threads, "NATS next message") {
            [subscription, threads] () throws(ShippyError) -> NATSMessage? in
            var message: OpaquePointer?
            let status = natsSubscription_NextMsg(&message, subscription.raw, milliseconds)
            if status == NATS_TIMEOUT { return nil }
            try check(status, "NATS subscription")
            return message.map { NATSMessage($0, threads: threads) }
        }
    }

    public func close() async {
        await runToCompletion(threads) { [subscription] in natsSubscription_Destroy(subscription.raw) }
    }
}

/// A JetStream key-value bucket: keys with a time to live, shared by every replica and kept across restarts.
public final class NATSKeyValue: Sendable {
    private let store: CHandle
    private let threads: NIOThreadPool

    init(store: CHandle, threads: NIOThreadPool) {
        self.store = store
        self.threads = threads
    }

    /// Whether `key` is set (and not expired).
    /// - Throws: `ShippyError` `.unavailable` when the server cannot say.
    public func contains(_ key: String) async throws(ShippyError) -> Bool {
        try await runOnPool(threads, "read \(key)") { [store] () throws(ShippyError) -> Bool in
            var entry: OpaquePointer?
            let status = kvStore_Get(&entry, store.raw, key)
            kvEntry_Destroy(entry)
            if status == NATS_NOT_FOUND { return false }
            try check(status, "JetStream key-value read")
            return true
        }
    }

    /// Sets `key` to `value`.
    public func set(_ key: String, to value: String = "") async throws(ShippyError) {
        try await runOnPool(threads, "write \(key)") { [store] () throws(ShippyError) in
            var revision: UInt64 = 0
            try check(kvStore_PutString(&revision, store.raw, key, value), "JetStream key-value write")
        }
    }

    /// The value of `key` and its revision, or `nil` when it is not set (or deleted, or expired).
    public func entry(_ key: String) async throws(ShippyError) -> (value: String, revision: UInt64)? {
        try await runOnPool(threads, "read \(key)") { [store] () throws(ShippyError) -> (String, UInt64)? in
            var entry: OpaquePointer?
            let status = kvStore_Get(&entry, store.raw, key)
            defer { kvEntry_Destroy(entry) }
            if status == NATS_NOT_FOUND { return nil }
            try check(status, "JetStream key-value read")
            return (kvEntry_ValueString(entry).map { String(cString: $0) } ?? "", kvEntry_Revision(entry))
        }
    }

    /// Sets `key` to `value` only if it is not set (`revision` nil), or only if its revision is still
    /// `revision`: of writers racing for one key, at most one gets `true`. `false` also when the write failed
    /// for another reason (the C client does not tell the two apart): read the entry to learn more.
    public func setIfUnchanged(_ key: String, to value: String, revision: UInt64?) async -> Bool {
        (try? await runOnPool(threads, "write \(key)") { [store] () throws(ShippyError) -> Bool in
            var written: UInt64 = 0
            let status =
                if let revision { kvStore_UpdateString(&written, store.raw, key, value, revision) } else {
                    kvStore_CreateString(&written, store.raw, key, value)
                }
            return status == NATS_OK
        }) ?? false
    }

    /// Deletes `key`.
    public func delete(_ key: String) async throws(ShippyError) {
        try await runOnPool(threads, "delete \(key)") { [store] () throws(ShippyError) in
            try check(kvStore_Delete(store.raw, key), "JetStream key-value delete")
        }
    }

    public func close() async {
        await runToCompletion(threads) { [store] in kvStore_Destroy(store.raw) }
    }
}

/// A pointer to a NATS C object, passed between threads. The C client documents connections, JetStream
/// contexts, subscriptions and key-value stores as safe to use from any thread; a message is owned by one
/// `NATSMessage`, which releases it once.
struct CHandle: @unchecked Sendable {
    let raw: OpaquePointer
    init(_ raw: OpaquePointer) { self.raw = raw }
}

/// Runs `body` on the pool to its end even when the calling task is cancelled: acknowledgements and closes at
/// shutdown must not be skipped (a cancelled caller would otherwise never get them run).
private func runToCompletion(_ threads: NIOThreadPool, _ body: @escaping @Sendable () -> Void) async {
    await Task.detached { _ = try? await threads.runIfActive(body) }.value
}

/// Runs a C call on the pool, its failures as `ShippyError`.
private func runOnPool<T: Sendable>(
    _ threads: NIOThreadPool, _ operation: String, _ body: @escaping @Sendable () throws(ShippyError) -> T
) async throws(ShippyError) -> T {
    do {
        return try await threads.runIfActive { try body() }
    } catch let error as ShippyError {
        throw error
    } catch {
        throw .unavailable("NATS client is shut down")
    }
}

/// A copy of a message's payload.
private func payloadBytes(of message: OpaquePointer) -> [UInt8] {
    let length = Int(natsMsg_GetDataLength(message))
    return natsMsg_GetData(message).map { Array(UnsafeRawBufferPointer(start: $0, count: length)) } ?? []
}

/// Throws `ShippyError` for a failed C call, with the C client's text for the status.
private func check(_ status: natsStatus, _ what: String, code: ShippyError.Code = .unavailable) throws(ShippyError) {
    guard status != NATS_OK else { return }
    // The thread's last error says more than the status ("SSL handshake error: certificate verify failed"); it
    // holds no credentials (the URL's are never in it).
    let detail = nats_GetLastError(nil).map { String(cString: $0) } ?? ""
    let text = String(cString: natsStatus_GetText(status))
    throw ShippyError(code, "\(what): \(detail.isEmpty || detail == text ? text : "\(text) (\(detail))")")
}

/// Runs `body` with C copies of `strings` that live exactly as long as it runs.
private func withCStrings<T>(
    _ strings: [String], _ body: ([UnsafePointer<CChar>]) throws(ShippyError) -> T
)
    throws(ShippyError) -> T
{
    let copies = strings.map { strdup($0)! }
    defer { copies.forEach { free($0) } }
    return try body(copies.map { UnsafePointer($0) })
}
