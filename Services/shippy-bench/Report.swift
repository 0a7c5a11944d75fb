import Foundation

/// What one scenario measured, as printed and as `--json` writes it.
struct ScenarioResult: Codable, Sendable {
    struct Call: Codable, Sendable {
        var calls: Int
        var callsPerSecond: Double
        /// Latency percentiles in milliseconds: p50, p90, p99, p99.9.
        var p50: Double, p90: Double, p99: Double, p999: Double
        var errors: [String: Int]
        /// The first message of each failing code.
        var messages: [String: String]
    }

    var scenario: String
    var summary: String
    var pace: String
    var server: String
    var seconds: Double
    var calls: [String: Call]
    var processes: [String: ProcessUsage]
    /// CPU microseconds per call of the scenario (all its calls), by process.
    var cpuMicrosecondsPerCall: [String: Double]
    /// For scenarios that hash: the most logins per second this machine's cores could do at the configured
    /// cost (cores ÷ CPU seconds per hash, measured here).
    var bcryptCeilingPerSecond: Double?

    init(
        scenario: Scenario, pace: Pace, seconds: Double, stats: [String: CallStats],
        processes: [String: ProcessUsage], bcryptCeiling: Double?
    ) {
        self.scenario = scenario.name
        self.summary = scenario.summary
        self.pace = pace.description
        self.server = scenario.server
        self.seconds = seconds
        self.calls = stats.mapValues { stats in
            let milliseconds = { (percentile: Double) in
                stats.latency.totalCount == 0 ? 0 : Double(stats.latency.valueAtPercentile(percentile)) / 1000
            }
            return Call(
                calls: stats.calls, callsPerSecond: Double(stats.calls) / seconds, p50: milliseconds(50),
                p90: milliseconds(90), p99: milliseconds(99), p999: milliseconds(99.9), errors: stats.errors,
                messages: stats.messages)
        }
        self.processes = processes
        let total = max(1, stats.values.reduce(0) { $0 + $1.calls })
        self.cpuMicrosecondsPerCall = processes.mapValues { $0.cpuSeconds * 1e6 / Double(total) }
        self.bcryptCeilingPerSecond = bcryptCeiling
    }

    var failures: Int { calls.values.reduce(0) { $0 + $1.errors.values.reduce(0, +) } }

    /// A few lines for the terminal.
    var text: String {
        var lines = ["\(scenario): \(summary) (\(pace), \(String(format: "%.1f", seconds)) s)"]
        for (name, call) in calls.sorted(by: { $0.key < $1.key }) {
            let errors =
                call.errors.isEmpty
                ? "no errors"
                : call.errors.sorted { $0.key < $1.key }.map {
                    "\($0.key) \($0.value) (first: \(call.messages[$0.key] ?? ""))"
                }
                .joined(separator: ", ")
            lines.append(
                "  \(name): \(call.calls) calls, \(format(call.callsPerSecond))/s, p50 \(format(call.p50)) ms, "
                    + "p90 \(format(call.p90)), p99 \(format(call.p99)), p99.9 \(format(call.p999)); \(errors)")
        }
        for (name, micros) in cpuMicrosecondsPerCall.sorted(by: { $0.key < $1.key }) {
            let usage = processes[name]!
            lines.append(
                "  \(name): \(format(micros)) µs CPU per call; resident \(format(usage.residentMegabytesAtStart)) MB "
                    + "at start, \(format(usage.residentMegabytesPeak)) MB at most")
        }
        if let ceiling = bcryptCeilingPerSecond {
            lines.append("  bcrypt ceiling of this machine at the configured cost: \(format(ceiling)) hashes/s")
        }
        return lines.joined(separator: "\n")
    }
}

func format(_ value: Double) -> String {
    value >= 100
        ? String(format: "%.0f", value) : value >= 10 ? String(format: "%.1f", value) : String(format: "%.2f", value)
}

/// A failure of the bench itself: one line and exit 64 (usage) or 69 (a service could not be used).
struct BenchFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
