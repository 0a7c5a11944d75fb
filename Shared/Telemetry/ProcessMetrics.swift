import Foundation

/// The process's own figures under Prometheus' standard names, read from /proc at each scrape: resident memory,
/// CPU seconds, open file descriptors and start time (Linux; elsewhere the figures that cannot be read are left out).
struct ProcessMetrics {
    var residentBytes: Int?
    var cpuSeconds: Double?
    var openFileDescriptors: Int?
    var startTimeSeconds: Double?

    static func current() -> ProcessMetrics {
        let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
        var metrics = ProcessMetrics()
        if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kilobytes = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) })
        {
            metrics.residentBytes = kilobytes * 1024
        }
        // Fields after the command name (which may hold spaces, hence the last ')'): utime is the 14th field of
        // the line, stime the 15th, starttime (ticks after boot) the 22nd.
        if let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
            let end = stat.lastIndex(of: ")")
        {
            let fields = stat[stat.index(after: end)...].split(separator: " ")
            if fields.count > 19, let user = Double(fields[11]), let system = Double(fields[12]),
                let start = Double(fields[19]), let boot = bootTime()
            {
                metrics.cpuSeconds = (user + system) / ticksPerSecond
                metrics.startTimeSeconds = boot + start / ticksPerSecond
            }
        }
        if let descriptors = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
            metrics.openFileDescriptors = descriptors.count
        }
        return metrics
    }

    /// Seconds since the epoch at which the machine booted (`btime` of /proc/stat).
    private static func bootTime() -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
            let line = stat.split(separator: "\n").first(where: { $0.hasPrefix("btime ") })
        else { return nil }
        return Double(line.dropFirst("btime ".count))
    }

    /// Appends the figures in Prometheus' text format.
    func emit(into text: inout [UInt8]) {
        var lines = ""
        func add(_ name: String, _ type: String, _ help: String, _ value: String?) {
            guard let value else { return }
            lines += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(value)\n"
        }
        add("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", residentBytes.map { "\($0)" })
        add("process_cpu_seconds_total", "counter", "User and system CPU time in seconds.", cpuSeconds.map { "\($0)" })
        add("process_open_fds", "gauge", "Open file descriptors.", openFileDescriptors.map { "\($0)" })
        add(
            "process_start_time_seconds", "gauge", "Start time of the process since the epoch, in seconds.",
            startTimeSeconds.map { "\($0)" })
        text += Array(lines.utf8)
    }
}
