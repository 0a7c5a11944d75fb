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

    /// Whole seconds, rounded up and at least 1: a wait as a retry hint (`Retry-After`, "retry in N s") that never
    /// tells a client to come back before it should.
    public var wholeSecondsRoundedUp: Int {
        let (seconds, attoseconds) = components
        return max(1, Int(seconds) + (attoseconds > 0 ? 1 : 0))
    }

    /// Whole nanoseconds, for timers.
    public var nanoseconds: Int64 {
        components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000
    }
}
