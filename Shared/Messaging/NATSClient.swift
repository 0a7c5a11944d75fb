import CNats
import Logging
import NIOPosix
import ShippyDomain

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
    public static func connect(url: String, name: String) async throws(ShippyError) -> NATSClient {
        let redacted = redact(url)
        let threads = NIOThreadPool(numberOfThreads: 2)
        threads.start()
        do {
            let (connection, jetStream) = try await threads.runIfActive { () throws -> (CHandle, CHandle) in
                var options: OpaquePointer?
                try check(natsOptions_Create(&options), "NATS options")
                defer { natsOptions_Destroy(options) }
                try check(natsOptions_SetURL(options, url), "NATS URL \(redacted)", code: .invalidArgument)
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
    /// - Parameter duplicateWindow: how long JetStream drops a second publication of the same message id.
    public func ensureStream(name: String, subjects: [String], duplicateWindow: Duration) async throws(ShippyError) {
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
    public func publish(subject: String, payload: [UInt8], messageID: String) async throws(ShippyError) {
        try await run("publish to \(subject)") { [jetStream, redactedURL] () throws(ShippyError) in
            try withCStrings([subject, messageID]) { strings throws(ShippyError) in
                var options = jsPubOptions()
                jsPubOptions_Init(&options)
                options.MsgId = strings[1]
                options.MaxWait = 2000
                var ack: UnsafeMutablePointer<jsPubAck>?
                var code = jsErrCode(0)
                let status = payload.withUnsafeBytes { bytes in
                    js_Publish(&ack, jetStream.raw, strings[0], bytes.baseAddress, Int32(bytes.count), &options, &code)
                }
                jsPubAck_Destroy(ack)
                try check(status, "NATS at \(redactedURL)")
            }
        }
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

    /// A plain (not JetStream) subscription, to watch what goes over the wire.
    public func rawSubscription(subject: String) async throws(ShippyError) -> NATSRawSubscription {
        let subscription = try await run("subscribe to \(subject)") { [connection] () throws(ShippyError) -> CHandle in
            var subscription: OpaquePointer?
            try check(natsConnection_SubscribeSync(&subscription, connection.raw, subject), "NATS subscription")
            _ = natsConnection_Flush(connection.raw)
            return CHandle(subscription!)
        }
        return NATSRawSubscription(subscription: subscription, threads: threads)
    }

    /// Lets pending work finish (drain), then closes the connection and its threads.
    public func close() async {
        _ = try? await threads.runIfActive { [connection, jetStream] in
            _ = natsConnection_Drain(connection.raw)
            jsCtx_Destroy(jetStream.raw)
            natsConnection_Destroy(connection.raw)
        }
        try? await threads.shutdownGracefully()
    }

    private func run<T: Sendable>(
        _ operation: String, _ body: @escaping @Sendable () throws(ShippyError) -> T
    )
        async throws(ShippyError) -> T
    {
        do {
            return try await threads.runIfActive { try body() }
        } catch let error as ShippyError {
            throw error
        } catch {
            throw .unavailable("NATS client is shut down")
        }
    }

    /// Removes `user:password@` from a URL.
    public static func redact(_ url: String) -> String {
        redactingCredentials(url)
    }
}

/// A message from a pull subscription; acknowledge it once handled, or it is delivered again.
public struct NATSMessage: Sendable {
    /// Owned by this value alone; `ack()` frees it.
    private let message: CHandle
    private let threads: NIOThreadPool
    public let payload: [UInt8]
    /// The publisher's `Nats-Msg-Id` header, if any.
    public let messageID: String?

    init(_ message: OpaquePointer, threads: NIOThreadPool) {
        self.message = CHandle(message)
        self.threads = threads
        payload = payloadBytes(of: message)
        var value: UnsafePointer<CChar>?
        messageID =
            natsMsgHeader_Get(message, "Nats-Msg-Id", &value) == NATS_OK ? value.map { String(cString: $0) } : nil
    }

    /// Acknowledges and frees the message.
    public func ack() async {
        _ = try? await threads.runIfActive { [message] in
            _ = natsMsg_Ack(message.raw, nil)
            natsMsg_Destroy(message.raw)
        }
    }
}

/// A durable JetStream pull consumer, read as an `AsyncSequence` of messages.
public final class NATSPullSubscription: Sendable {
    private let subscription: CHandle
    private let threads: NIOThreadPool

    init(subscription: CHandle, threads: NIOThreadPool) {
        self.subscription = subscription
        self.threads = threads
    }

    /// The messages, fetched in batches on the NATS thread pool until the task reading them is cancelled.
    /// Fetching survives a server restart: the C client reconnects and the durable consumer lives on the server.
    public var messages: AsyncStream<NATSMessage> {
        AsyncStream { continuation in
            let task = Task {
                while !Task.isCancelled {
                    let batch =
                        (try? await threads.runIfActive { [subscription, threads] () -> [NATSMessage] in
                            var list = natsMsgList()
                            var code = jsErrCode(0)
                            guard natsSubscription_Fetch(&list, subscription.raw, 16, 1000, &code) == NATS_OK else {
                                return []
                            }
                            var messages: [NATSMessage] = []
                            for index in 0..<Int(list.Count) {
                                if let message = list.Msgs[index] {
                                    messages.append(NATSMessage(message, threads: threads))
                                    list.Msgs[index] = nil  // now owned by the NATSMessage; the list must not free it
                                }
                            }
                            natsMsgList_Destroy(&list)
                            return messages
                        }) ?? []
                    for message in batch { continuation.yield(message) }
                    if batch.isEmpty { try? await Task.sleep(for: .milliseconds(50)) }
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// Stops the subscription without deleting the durable consumer, so that replicas and restarts resume it.
    public func close() async {
        _ = try? await threads.runIfActive { [subscription] in natsSubscription_Destroy(subscription.raw) }
    }
}

/// A plain subscription read one message at a time.
public final class NATSRawSubscription: Sendable {
    private let subscription: CHandle
    private let threads: NIOThreadPool

    init(subscription: CHandle, threads: NIOThreadPool) {
        self.subscription = subscription
        self.threads = threads
    }

    /// The next message's payload, or `nil` after `timeout`.
    public func next(timeout: Duration) async -> [UInt8]? {
        let milliseconds = timeout.milliseconds
        return
            (try? await threads.runIfActive { [subscription] () -> [UInt8]? in
                var message: OpaquePointer?
                guard natsSubscription_NextMsg(&message, subscription.raw, milliseconds) == NATS_OK, let message else {
                    return nil
                }
                defer { natsMsg_Destroy(message) }
                return payloadBytes(of: message)
            }) ?? nil
    }

    public func close() async {
        _ = try? await threads.runIfActive { [subscription] in natsSubscription_Destroy(subscription.raw) }
    }
}

/// A pointer to a NATS C object, passed between threads. The C client documents connections, JetStream
/// contexts and subscriptions as safe to use from any thread; a message is owned by one `NATSMessage`.
struct CHandle: @unchecked Sendable {
    let raw: OpaquePointer
    init(_ raw: OpaquePointer) { self.raw = raw }
}

/// A copy of a message's payload.
private func payloadBytes(of message: OpaquePointer) -> [UInt8] {
    let length = Int(natsMsg_GetDataLength(message))
    return natsMsg_GetData(message).map { Array(UnsafeRawBufferPointer(start: $0, count: length)) } ?? []
}

/// Throws `ShippyError` for a failed C call, with the C client's text for the status.
private func check(_ status: natsStatus, _ what: String, code: ShippyError.Code = .unavailable) throws(ShippyError) {
    guard status != NATS_OK else { return }
    throw ShippyError(code, "\(what): \(String(cString: natsStatus_GetText(status)))")
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
