/// Runs `operation`, cancelling it when `timeout` passes first.
/// - Throws: `ShippyError` `.unavailable` naming `what` on timeout; otherwise what `operation` throws.
public func withDeadline<T: Sendable>(
    _ timeout: Duration,
    unavailable what: String,
    _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(for: timeout)
            return nil
        }
        defer { group.cancelAll() }
        guard case let value?? = try await group.next() else {
            throw ShippyError.unavailable("\(what) did not answer within \(Double(timeout.milliseconds) / 1000) s")
        }
        return value
    }
}
