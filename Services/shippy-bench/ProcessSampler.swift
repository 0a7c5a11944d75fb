import Foundation

/// A process of this machine to account for, by name and PID: a service, or a database server (whose child
/// processes, PostgreSQL's backends among them, count as its own).
struct WatchedProcess: Sendable, Hashable {
    var name: String
    var pid: Int32

    /// `name=PID`, as `--process` takes it.
    init(argument: String) throws {
        let parts = argument.split(separator: "=", maxSplits: 1)
        guard parts.count == 2, !parts[0].isEmpty, let pid = Int32(parts[1]), pid > 0 else {
            throw BenchFailure("--process takes NAME=PID (for example vessel-service=4242), not \"\(argument)\"")
        }
        self.name = String(parts[0])
        self.pid = pid
    }

    /// On-CPU time of every thread of the process and of its descendants, from the kernel's scheduler
    /// statistics (nanoseconds; a thread or child that ended between two samples is not counted).
    func cpuNanoseconds() -> UInt64 {
        Self.family(of: pid).reduce(0) { total, member in
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(member)/task")) ?? []
            return tasks.reduce(total) { sum, task in
                guard let text = try? String(contentsOfFile: "/proc/\(member)/task/\(task)/schedstat", encoding: .utf8),
                    let first = text.split(separator: " ").first, let nanoseconds = UInt64(first)
                else { return sum }
                return sum + nanoseconds
            }
        }
    }

    /// Resident memory of the process and its descendants, in bytes.
    func residentBytes() -> UInt64 {
        Self.family(of: pid).reduce(0) { total, member in
            guard let status = try? String(contentsOfFile: "/proc/\(member)/status", encoding: .utf8),
                let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
                let kilobytes = UInt64(line.split(separator: " ").dropFirst().first ?? "")
            else { return total }
            return total + kilobytes * 1024
        }
    }

    var isAlive: Bool { kill(pid, 0) == 0 }

    /// The process and every descendant that lives now.
    private static func family(of root: Int32) -> [Int32] {
        var parents: [Int32: [Int32]] = [:]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry),
                let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { continue }
            // After "pid (comm) ": state, then the parent's PID.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, let parent = Int32(fields[1]) { parents[parent, default: []].append(pid) }
        }
        var family: [Int32] = []
        var queue = [root]
        while let next = queue.popLast() {
            family.append(next)
            queue += parents[next] ?? []
        }
        return family
    }
}

/// CPU and memory of the watched processes over one measured interval.
struct ProcessUsage: Sendable, Codable {
    var cpuSeconds: Double
    var residentMegabytesAtStart: Double
    var residentMegabytesPeak: Double
}

/// Samples the watched processes: CPU at the start and end of the measured interval, memory at every tick.
final class ProcessSampler: @unchecked Sendable {
    // Touched only from the run's own task, between ticks: no lock needed.
    private let processes: [WatchedProcess]
    private var cpuAtStart: [WatchedProcess: UInt64] = [:]
    private var memoryAtStart: [WatchedProcess: UInt64] = [:]
    private var memoryPeak: [WatchedProcess: UInt64] = [:]

    init(_ processes: [WatchedProcess]) { self.processes = processes }

    func start() {
        for process in processes {
            cpuAtStart[process] = process.cpuNanoseconds()
            let resident = process.residentBytes()
            memoryAtStart[process] = resident
            memoryPeak[process] = resident
        }
    }

    func tick() {
        for process in processes { memoryPeak[process] = max(memoryPeak[process] ?? 0, process.residentBytes()) }
    }

    func finish() -> [String: ProcessUsage] {
        tick()
        var usage: [String: ProcessUsage] = [:]
        for process in processes {
            // A thread or child that ended in between takes its time with it: never below zero.
            let end = process.cpuNanoseconds()
            let cpu = end - min(end, cpuAtStart[process] ?? 0)
            usage[process.name] = ProcessUsage(
                cpuSeconds: Double(cpu) / 1e9,
                residentMegabytesAtStart: Double(memoryAtStart[process] ?? 0) / 1_048_576,
                residentMegabytesPeak: Double(memoryPeak[process] ?? 0) / 1_048_576)
        }
        return usage
    }
}
