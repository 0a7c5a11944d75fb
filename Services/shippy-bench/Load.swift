import Foundation
import Synchronization

/// How calls arrive: a fixed number of workers each waiting for its answer before the next call (closed
/// loop), calls started at a fixed rate whatever the answers do (open loop), or a number of calls all started
/// at once when the measuring starts (a burst; the run ends when they have all been answered).
enum Pace: Sendable, CustomStringConvertible {
    case closed(workers: Int)
    case open(perSecond: Double)
    case burst(calls: Int)

    var description: String {
        switch self {
        case .closed(let workers): "closed loop, \(workers) workers"
        case .open(let rate): "open loop, \(Int(rate)) calls/s"
        case .burst(let calls): "a burst of \(calls) calls at once"
        }
    }
}

/// One stream of work in a scenario: an operation repeated at a pace. `due` is when the iteration was meant
/// to start (the open loop measures latency from it).
struct LoadStream: Sendable {
    var pace: Pace
    var operation: @Sendable (_ iteration: Int, _ due: ContinuousClock.Instant) async -> Void
}

/// How long the measured part lasts: a time, or a number of iterations of the scenario's first stream.
enum RunLimit: Sendable {
    case duration(Duration)
    case count(Int)
}

/// Runs the streams together: a warm-up, then the measured interval, with a progress line on stderr every
/// second. With a burst among the streams, the measured interval lasts until every burst's calls have been
/// answered, whatever `limit` says. Returns the measured interval's length.
func runLoad(
    _ label: String, streams: [LoadStream], warmUp: Duration, limit: RunLimit, recorder: Recorder,
    sampler: ProcessSampler
) async -> Duration {
    let state = RunState()
    let bursts = streams.filter { if case .burst = $0.pace { true } else { false } }.count
    state.burstsLeft.store(bursts, ordering: .relaxed)
    return await withTaskGroup(of: Void.self) { group in
        for (index, stream) in streams.enumerated() {
            // Only the first stream's iterations count towards a `.count` limit.
            let counts = index == 0
            switch stream.pace {
            case .closed(let workers):
                for _ in 0..<workers {
                    group.addTask {
                        var iteration = 0
                        while !state.stopped.load(ordering: .relaxed) {
                            if counts, state.measuring.load(ordering: .relaxed) {
                                state.measuredIterations.add(1, ordering: .relaxed)
                            }
                            await stream.operation(iteration, .now)
                            iteration += 1
                        }
                    }
                }
            case .open(let rate):
                group.addTask {
                    await withDiscardingTaskGroup { calls in
                        let start = ContinuousClock.now
                        let interval = Duration.seconds(1 / rate)
                        var iteration = 0
                        while !state.stopped.load(ordering: .relaxed) {
                            let due = start + interval * iteration
                            try? await Task.sleep(until: due, clock: .continuous)
                            if counts, state.measuring.load(ordering: .relaxed) {
                                state.measuredIterations.add(1, ordering: .relaxed)
                            }
                            let current = iteration
                            calls.addTask { await stream.operation(current, due) }
                            iteration += 1
                        }
                    }
                }
            case .burst(let count):
                group.addTask {
                    while !state.measuring.load(ordering: .relaxed) { try? await Task.sleep(for: .milliseconds(1)) }
                    let due = ContinuousClock.now
                    await withDiscardingTaskGroup { calls in
                        for iteration in 0..<count { calls.addTask { await stream.operation(iteration, due) } }
                    }
                    state.burstsLeft.subtract(1, ordering: .relaxed)
                }
            }
        }

        try? await Task.sleep(for: warmUp)
        recorder.startMeasuring()
        sampler.start()
        state.measuring.store(true, ordering: .relaxed)
        let started = ContinuousClock.now
        var lastTick = started
        var lastCompleted = recorder.progress.completed
        while true {
            try? await Task.sleep(for: .milliseconds(100))
            let now = ContinuousClock.now
            let done: Bool =
                switch limit {
                case _ where bursts > 0: state.burstsLeft.load(ordering: .relaxed) == 0
                case .duration(let duration): now - started >= duration
                case .count(let count): state.measuredIterations.load(ordering: .relaxed) >= count
                }
            if done { break }
            if now - lastTick >= .seconds(1) {
                sampler.tick()
                let (completed, failed) = recorder.progress
                let rate = Double(completed - lastCompleted) / (now - lastTick).seconds
                printProgress(label, elapsed: now - started, completed: completed, rate: rate, failed: failed)
                lastTick = now
                lastCompleted = completed
            }
        }
        state.stopped.store(true, ordering: .relaxed)
        await group.waitForAll()
        return ContinuousClock.now - started
    }
}

/// What the workers and the controller of one run share.
private final class RunState: Sendable {
    let stopped = Atomic<Bool>(false)
    let measuring = Atomic<Bool>(false)
    let measuredIterations = Atomic<Int>(0)
    let burstsLeft = Atomic<Int>(0)
}

private func printProgress(_ label: String, elapsed: Duration, completed: Int, rate: Double, failed: Int) {
    let line =
        "  \(label): \(String(format: "%.0f", elapsed.seconds)) s, \(completed) calls, "
        + "\(String(format: "%.0f", rate))/s, \(failed) failed"
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
