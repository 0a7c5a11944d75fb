import HummingbirdCore
import HummingbirdTLS
import NIOSSL
import ShippyDomain

/// The gateway's HTTP server: HTTP/1.1 closing connections idle for `idleTimeout`, in TLS with `tls` (HTTPS only).
/// Apart from GatewayApp, as HummingbirdCore has a `ServerConfiguration` of its own.
func httpServer(idleTimeout: Duration, tls: TLSConfiguration?) throws -> HTTPServerBuilder {
    let http1 = HTTPServerBuilder.http1(configuration: .init(idleTimeout: .nanoseconds(idleTimeout.nanoseconds)))
    guard let tls else { return http1 }
    return try .tls(http1, tlsConfiguration: tls)
}
