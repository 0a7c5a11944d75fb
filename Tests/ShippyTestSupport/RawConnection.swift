import Foundation
import Glibc

/// A TCP connection to 127.0.0.1 that writes exactly the bytes a test gives it, as a slow or hostile client does.
public final class RawConnection {
    private let socket: Int32

    /// - Parameter source: the client's address; another loopback address (127.0.0.2, …) is another client.
    public init(port: Int, from source: String = "127.0.0.1") throws {
        socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        func address(_ host: String, _ port: Int) -> sockaddr_in {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr(host)
            address.sin_port = UInt16(port).bigEndian
            return address
        }
        var local = address(source, 0)
        var remote = address("127.0.0.1", port)
        let connected = withUnsafePointer(to: &local) { local in
            withUnsafePointer(to: &remote) { remote in
                local.withMemoryRebound(to: sockaddr.self, capacity: 1) { local in
                    remote.withMemoryRebound(to: sockaddr.self, capacity: 1) { remote in
                        let size = socklen_t(MemoryLayout<sockaddr_in>.size)
                        return bind(socket, local, size) == 0 ? connect(socket, remote, size) : -1
                    }
                }
            }
        }
        guard connected == 0 else {
            close(socket)
            throw POSIXError(.ECONNREFUSED)
        }
    }

    /// Whether the bytes went out; false once the peer has closed the connection.
    public func send(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { Glibc.send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
    }

    /// What the peer has sent so far (read by `isClosedByPeer`).
    public private(set) var received: [UInt8] = []

    /// Whether the peer closed the connection: reads that do not wait take what it sent, then see its end (0 bytes).
    public var isClosedByPeer: Bool {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            guard count > 0 else { return count == 0 }
            received += buffer[..<count]
        }
    }

    /// Exactly `count` bytes, waiting at most `timeout` for each; `nil` if the peer closed the connection or went
    /// silent first. It polls without blocking: a blocked thread would starve Swift's pool of its few threads.
    public func read(_ count: Int, timeout: Duration) async -> [UInt8]? {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: count)
        var silentSince = ContinuousClock.now
        while bytes.count < count {
            let read = buffer.withUnsafeMutableBytes {
                recv(socket, $0.baseAddress, count - bytes.count, Int32(MSG_DONTWAIT))
            }
            if read == 0 || (read < 0 && errno != EAGAIN) { return nil }
            if read > 0 {
                bytes += buffer[..<read]
                silentSince = .now
            } else if ContinuousClock.now - silentSince > timeout {
                return nil
            } else {
                try? await Task.sleep(for: .milliseconds(5))
            }
        }
        return bytes
    }

    deinit { close(socket) }
}
