/// A connection URL as it may be logged: `scheme://user:password@host` becomes `scheme://***@host`.
public func redactingCredentials(_ url: String) -> String {
    guard let scheme = url.firstRange(of: "://"), let at = url[scheme.upperBound...].lastIndex(of: "@") else {
        return url
    }
    return String(url[..<scheme.upperBound]) + "***@" + String(url[url.index(after: at)...])
}

extension Duration {
    /// Whole milliseconds, for logs, messages and C APIs that count in them.
    public var milliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }

    /// Whole nanoseconds, for timers.
    public var nanoseconds: Int64 {
        components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000
    }
}
