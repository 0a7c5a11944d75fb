import GRPCCore
import Logging
import ServiceLifecycle
import ShippyDiscovery
import ShippyRuntime
import ShippyTestSupport
import Testing

/// What one connection may pin on a gRPC server is bounded, tried with a raw HTTP/2 client that does what
/// grpc-swift's own client never would (it queues calls past the server's SETTINGS): a client that opens streams
/// past the limit loses its connection, without harm to other clients; a connection idle too long, or older than
/// its age, is sent GOAWAY and closed.
@Suite(.timeLimit(.minutes(1))) struct ConnectionLimitsTests {
    /// A serving health service behind the limits, for `body`.
    private func withServer(limits: GRPCServerService.ConnectionLimits, _ body: (Int) async throws -> Void) async throws
    {
        let health = HealthService(services: [])
        health.setServing(true)
        try await withHealthServerOnSocket(health, limits: limits, body)
    }

    @Test func aClientPastTheStreamLimitLosesItsConnectionAndOthersAreServed() async throws {
        try await withServer(limits: .standard) { port in
            let greedy = try HTTP2Connection(port: port)
            let settings = try #require(await greedy.handshake(), "no SETTINGS from the server")
            #expect(settings[HTTP2Connection.maxConcurrentStreams] == 250)
            // 251 calls left open: headers sent, no message. swift-nio-http2 answers the one past the limit as a
            // connection error (RFC 9113 allows that or refusing the stream): the greedy client loses its connection.
            let streams = (0...250).map { 1 + 2 * UInt32($0) }
            for stream in streams { greedy.openCheck(stream: stream) }
            let frames = await greedy.frames(until: { $0.type == .goAway })
            let goAway = try #require(frames.last { $0.type == .goAway }, "frames: \(frames)")
            #expect(goAway.errorCode == HTTP2Connection.protocolError)
            _ = await greedy.frames(until: { _ in false })
            #expect(greedy.isClosed)

            // Another client is served as before.
            let other = try HTTP2Connection(port: port)
            try #require(await other.handshake() != nil, "no SETTINGS for another client")
            other.openCheck(stream: 1)
            other.sendCheckMessage(stream: 1)
            let answer = await other.frames(until: { $0.type == .headers && $0.endsStream })
            #expect(answer.last?.type == .headers && answer.last?.stream == 1, "frames: \(answer)")
            #expect(!answer.contains { $0.type == .goAway || $0.type == .resetStream }, "frames: \(answer)")
        }
    }

    @Test func aConnectionIdleTooLongIsSentGoAwayAndClosed() async throws {
        try await withServer(limits: .init(idleTime: .seconds(1))) { port in
            let connection = try HTTP2Connection(port: port)
            try #require(await connection.handshake() != nil, "no SETTINGS from the server")
            let started = ContinuousClock.now
            let frames = await connection.frames(until: { _ in false })
            let goAway = try #require(frames.first { $0.type == .goAway }, "frames: \(frames)")
            #expect(goAway.errorCode == 0, "a graceful close, not an error")
            #expect(connection.isClosed)
            #expect(ContinuousClock.now - started < .seconds(10), "closed after \(ContinuousClock.now - started)")
        }
    }

    @Test func aConnectionOlderThanItsAgeIsClosedAfterTheGrace() async throws {
        try await withServer(limits: .init(age: .seconds(1), grace: .seconds(1))) { port in
            let connection = try HTTP2Connection(port: port)
            try #require(await connection.handshake() != nil, "no SETTINGS from the server")
            let started = ContinuousClock.now
            // A call kept open, so the connection is never idle: only its age ends it.
            connection.openCheck(stream: 1)
            let frames = await connection.frames(until: { _ in false })
            let goAway = try #require(frames.first { $0.type == .goAway }, "frames: \(frames)")
            #expect(goAway.errorCode == 0, "a graceful close, not an error")
            #expect(connection.isClosed)
            #expect(ContinuousClock.now - started < .seconds(10), "closed after \(ContinuousClock.now - started)")
        }
    }
}

/// A gRPC server with only the health service, `health`, on a free port of 127.0.0.1 (a real socket; mutual TLS
/// with `tls`, re-read every `rotation`), for the length of `body`, which gets the port.
func withHealthServerOnSocket(
    _ health: HealthService, tls: TLSFiles? = nil, rotation: Duration = .seconds(5),
    restricted: [MethodDescriptor: Set<String>] = [:], limits: GRPCServerService.ConnectionLimits = .standard,
    logger: Logger = Logger(label: "test"), _ body: (Int) async throws -> Void
) async throws {
    let certificates = try tls.map { try CertificateRotation(files: $0, interval: rotation, logger: logger) }
    let server = GRPCServerService(
        listener: .socket(host: "127.0.0.1", port: 0, tls: certificates), services: [], health: health,
        restricted: restricted, limits: limits, logger: logger)
    let services = (certificates.map { [("certificates", $0 as any Service)] } ?? []) + [("grpc-server", server)]
    let group = ServiceRunner.makeGroup(services, shutdownGrace: .seconds(5), logger: logger)
    try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        // Stopped gracefully, as a service is, never by cancelling its serving task: a connection accepted just
        // then would be dropped unserved, and NIO traps on that (swift-nio#2637; a fuzzed peer once hit it here).
        try await cleaningUp({ await group.triggerGracefulShutdown() }) {
            var port: Int?
            let listening = await eventually(within: .seconds(10)) {
                port = try? await server.listeningAddress?.ipv4?.port
                return port != nil
            }
            guard listening, let port else {
                Issue.record("the server never listened")
                return
            }
            try await body(port)
        }
        try await tasks.waitForAll()  // throws why the server stopped, if it did not start
    }
}

/// The client side of HTTP/2 (RFC 9113) written by hand: frames as bytes, header blocks as HPACK literals without
/// indexing or Huffman coding, which any decoder must take.
final class HTTP2Connection {
    enum FrameType: UInt8 { case data = 0, headers = 1, resetStream = 3, settings = 4, ping = 6, goAway = 7 }

    struct Frame: CustomStringConvertible {
        var type: FrameType?
        var rawType: UInt8
        var flags: UInt8
        var stream: UInt32
        var payload: [UInt8]

        var endsStream: Bool { flags & 0x1 != 0 }
        /// The error code of a RST_STREAM or GOAWAY.
        var errorCode: UInt32? {
            switch type {
            case .resetStream: Self.integer(payload, at: 0)
            case .goAway: Self.integer(payload, at: 4)
            default: nil
            }
        }
        var description: String {
            let what = "\(type.map { "\($0)" } ?? "type \(rawType)") on \(stream)"
            guard type == .goAway || type == .resetStream else { return what }
            let detail = type == .goAway ? String(decoding: payload.dropFirst(8), as: UTF8.self) : ""
            return "\(what) (error \(errorCode ?? 0)) \(detail)"
        }

        static func integer(_ bytes: [UInt8], at offset: Int) -> UInt32? {
            guard bytes.count >= offset + 4 else { return nil }
            return bytes[offset..<offset + 4].reduce(0) { $0 << 8 | UInt32($1) }
        }
    }

    static let maxConcurrentStreams: UInt16 = 0x3
    static let protocolError: UInt32 = 0x1

    private let socket: RawConnection

    init(port: Int) throws { socket = try RawConnection(port: port) }

    /// Sends the preface and empty SETTINGS, reads the server's SETTINGS and acknowledges them, so that they are in
    /// force for what follows. Returns them, by identifier.
    func handshake() async -> [UInt16: UInt32]? {
        _ = socket.send(Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8))
        send(.settings, flags: 0, stream: 0, [])
        guard let frame = await frames(until: { $0.type == .settings && $0.flags & 0x1 == 0 }).last,
            frame.type == .settings
        else { return nil }
        send(.settings, flags: 0x1, stream: 0, [])
        var settings: [UInt16: UInt32] = [:]
        for offset in stride(from: 0, to: frame.payload.count - 5, by: 6) {
            let identifier = UInt16(frame.payload[offset]) << 8 | UInt16(frame.payload[offset + 1])
            settings[identifier] = Frame.integer(frame.payload, at: offset + 2)
        }
        return settings
    }

    /// Opens a call of Health/Check: its headers, and no message yet.
    func openCheck(stream: UInt32) {
        let headers = [
            (":method", "POST"), (":scheme", "http"), (":path", "/grpc.health.v1.Health/Check"),
            (":authority", "127.0.0.1"), ("content-type", "application/grpc"), ("te", "trailers"),
        ]
        let block = headers.flatMap { name, value -> [UInt8] in [0x00] + Self.literal(name) + Self.literal(value) }
        send(.headers, flags: 0x4, stream: stream, block)
    }

    /// Whether the server has closed the connection.
    var isClosed: Bool { socket.isClosedByPeer }

    /// The call's message (an empty HealthCheckRequest), which ends its half of the stream.
    func sendCheckMessage(stream: UInt32) {
        send(.data, flags: 0x1, stream: stream, [0, 0, 0, 0, 0])
    }

    /// Frames from the server up to the first that `last` picks, or until the connection ends or is silent for
    /// 5 s. Answers the server's pings, as a live client does.
    func frames(until last: (Frame) -> Bool) async -> [Frame] {
        var frames: [Frame] = []
        while let head = await socket.read(9, timeout: .seconds(5)) {
            let length = Int(head[0]) << 16 | Int(head[1]) << 8 | Int(head[2])
            guard let payload = length == 0 ? [] : await socket.read(length, timeout: .seconds(5)) else { break }
            let frame = Frame(
                type: FrameType(rawValue: head[3]), rawType: head[3], flags: head[4],
                stream: Frame.integer(head, at: 5)! & 0x7fff_ffff, payload: payload)
            frames.append(frame)
            if frame.type == .ping && frame.flags & 0x1 == 0 { send(.ping, flags: 0x1, stream: 0, payload) }
            if last(frame) { break }
        }
        return frames
    }

    private func send(_ type: FrameType, flags: UInt8, stream: UInt32, _ payload: [UInt8]) {
        let length = UInt32(payload.count)
        let head: [UInt8] = [
            UInt8(length >> 16 & 0xff), UInt8(length >> 8 & 0xff), UInt8(length & 0xff), type.rawValue, flags,
            UInt8(stream >> 24 & 0x7f), UInt8(stream >> 16 & 0xff), UInt8(stream >> 8 & 0xff), UInt8(stream & 0xff),
        ]
        _ = socket.send(head + payload)
    }

    /// An HPACK string literal, not Huffman-coded (every string here is shorter than 127 bytes).
    private static func literal(_ string: String) -> [UInt8] { [UInt8(string.utf8.count)] + Array(string.utf8) }
}
