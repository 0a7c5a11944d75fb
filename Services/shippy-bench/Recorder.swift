import GRPCCore
import Histogram
import Synchronization

/// What one kind of call did during the measured part of a run: latencies (µs) and failures by status code.
struct CallStats: Sendable {
    var latency = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
    var errors: [String: Int] = [:]
    /// The first message seen with each failing code: what it was about.
    var messages: [String: String] = [:]

    var calls: Int { Int(latency.totalCount) + errors.values.reduce(0, +) }
    var failures: Int { errors.values.reduce(0, +) }
}

/// Collects every call's outcome from every worker. Calls made before `startMeasuring()` (the warm-up) count
/// for progress only.
final class Recorder: Sendable {
    private let stats = Mutex<[String: CallStats]>([:])
    private let measuring = Atomic<Bool>(false)
    private let completed = Atomic<Int>(0)
    private let failed = Atomic<Int>(0)

    func startMeasuring() { measuring.store(true, ordering: .relaxed) }

    /// Runs `call`, timing it from `since` (an open loop passes the instant the call was due, so that a slow
    /// server cannot hide its queue); a failure is counted by its status code and not rethrown.
    /// - Parameter refusedAs: where a refusal the scenario expects (`unavailable`: busy, retry) is recorded, as
    ///   an answer of its own rather than a failure.
    /// - Returns: the call's result, or nil when it failed.
    @discardableResult
    func measure<Result>(
        _ name: String, since: ContinuousClock.Instant = .now, refusedAs: String? = nil,
        _ call: () async throws -> Result
    ) async -> Result? {
        var name = name
        var code: String?
        var message = ""
        var result: Result?
        do {
            result = try await call()
        } catch let error as RPCError where error.code == .unavailable && refusedAs != nil {
            name = refusedAs!
        } catch let error as RPCError {
            code = "\(error.code)"
            message = error.message
        } catch {
            code = "client error"
            message = "\(error)"
        }
        let elapsed = ContinuousClock.now - since
        completed.add(1, ordering: .relaxed)
        if code != nil { failed.add(1, ordering: .relaxed) }
        guard measuring.load(ordering: .relaxed) else { return result }
        let micros = UInt64(
            max(1, elapsed.components.seconds * 1_000_000 + elapsed.components.attoseconds / 1_000_000_000_000))
        stats.withLock { stats in
            if let code {
                stats[name, default: CallStats()].errors[code, default: 0] += 1
                if stats[name]!.messages[code] == nil { stats[name]!.messages[code] = message }
            } else {
                _ = stats[name, default: CallStats()].latency.record(micros)
            }
        }
        return result
    }

    /// Calls so far (warm-up included) and how many of them failed: for the progress line.
    var progress: (completed: Int, failed: Int) {
        (completed.load(ordering: .relaxed), failed.load(ordering: .relaxed))
    }

    var results: [String: CallStats] { stats.withLock { $0 } }
}
