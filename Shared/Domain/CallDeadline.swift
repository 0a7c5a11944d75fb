/// When the caller of the current call stops waiting: its gRPC deadline (`grpc-timeout`), from the instant the
/// call arrived. Bound for the handler by `CallDeadlineInterceptor`.
public enum CallDeadline {
    @TaskLocal public static var current: ContinuousClock.Instant?

    /// A `grpc-timeout` value (1 to 8 digits and a unit: H, M, S, m, u, n) as a duration; `nil` when malformed.
    public static func timeout(_ text: String) -> Duration? {
        let digits = text.dropLast()
        guard let unit = text.last, (1...8).contains(digits.count), digits.allSatisfy({ ("0"..."9").contains($0) }),
            let amount = Int64(digits)
        else { return nil }
        switch unit {
        case "H": return .seconds(amount * 3600)
        case "M": return .seconds(amount * 60)
        case "S": return .seconds(amount)
        case "m": return .milliseconds(amount)
        case "u": return .microseconds(amount)
        case "n": return .nanoseconds(amount)
        default: return nil
        }
    }
}
