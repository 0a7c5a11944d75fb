import ArgumentParser
import Foundation
import GRPCCore
import HummingbirdBcrypt
import ShippyCLI
import ShippyConfiguration
import ShippyContracts
import ShippyDiscovery

/// The entry of `shippy-bench`, for its executable and for `shippy`: nil runs it with the process's arguments.
public func shippyBenchMain(_ arguments: [String]? = nil) async { await ShippyBench.main(arguments) }

/// `shippy-bench`: load for a running Shippy, with latency percentiles and the CPU each call costs.
struct ShippyBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shippy-bench",
        abstract: "Put a running Shippy under load and report calls/s, latency and CPU per call.",
        discussion: """
            Examples:
              shippy-bench                                   # every scenario, 10 s each, against 127.0.0.1
              shippy-bench find-available --rate 500 --duration 20
              shippy-bench auth --process user-service=$(cat .local/run/user-service.pid)
              shippy-bench --count 200 --json smoke.json     # a short run: a few hundred calls of each

            Scenarios: \(Scenario.all.map(\.name).joined(separator: ", ")) (greeter only with --greeter).
            Users it signs up are named PREFIX…@bench.example.com (see --prefix); remove them with
            DELETE FROM users WHERE email LIKE 'PREFIX%' and their consignments by user_id.
            Exit status: 0 every call succeeded, 1 some failed (counted by status code), 64 bad usage,
            69 a service could not be reached or the run's users could not be made.
            """,
        subcommands: [Run.self, ServingTime.self, Spread.self],
        defaultSubcommand: Run.self
    )
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run scenarios (the default).")

    @Argument(help: "Scenarios to run, in order (default: all but greeter, or all with --greeter).")
    var scenarios: [String] = []

    @Option(help: CLISettings.help(SharedSettings.userServiceAddress)) var userService: String?
    @Option(help: CLISettings.help(SharedSettings.vesselServiceAddress)) var vesselService: String?
    @Option(help: CLISettings.help(SharedSettings.consignmentServiceAddress)) var consignmentService: String?
    @Option(help: "A bare helloworld greeter's address, for the `greeter` scenario.") var greeter: String?
    @Option(help: "A scenario to leave out of the default list (repeatable).") var skip: [String] = []

    @Option(help: "HTTP/2 connections to each service.") var connections = 4
    @Option(help: "Closed loop: calls in flight at once; a burst: its calls (default: the scenario's).")
    var concurrency: Int?
    @Option(help: "Open loop: calls started per second, whatever the answers do.") var rate: Double?
    /// `reads`' own rate, and the default of the reads beside `auth-under-reads`' logins.
    static let readsRate = 150.0
    @Option(help: "Open loop: calls started per second by the reads beside `auth-under-reads`' logins.")
    var readsBesideLogins = Run.readsRate
    @Option(help: "Seconds each scenario is measured.") var duration: Double = 10
    @Option(help: "Instead of --duration: iterations each scenario is measured.") var count: Int?
    @Option(help: "Seconds of calls before measuring.") var warmUp: Double = 2
    @Option(help: "Deadline of each call, in seconds (a burst scenario sets its own).") var timeout: Double = 10
    @Option(name: .customLong("process"), help: "NAME=PID of a process on this machine to account CPU and memory to.")
    var processes: [String] = []
    @Option(help: "bcrypt cost user-service hashes with (BCRYPT_COST), for the machine's ceiling.")
    var bcryptCost = 12
    @Option(help: "Start of every email the run signs up (default: bench-<time>-).") var prefix: String?
    @Option(help: "Write the results as JSON to this file.") var json: String?
    @Option(
        help:
            "An admin's token (or SHIPPY_TOKEN), to register the run's own vessel; without one, bookings use the fleet's room."
    )
    var adminToken: String?

    func validate() throws {
        let unknown = (scenarios + skip).filter { name in !Scenario.all.contains { $0.name == name } }
        guard unknown.isEmpty else {
            throw ValidationError(
                "unknown scenario \(unknown.joined(separator: ", ")); known: \(Scenario.all.map(\.name).joined(separator: ", "))"
            )
        }
        guard connections > 0 else { throw ValidationError("--connections must be at least 1") }
        if let concurrency, concurrency <= 0 { throw ValidationError("--concurrency must be at least 1") }
        if let rate, rate <= 0 { throw ValidationError("--rate must be greater than 0") }
        guard readsBesideLogins > 0 else { throw ValidationError("--reads-beside-logins must be greater than 0") }
        if let count, count <= 0 { throw ValidationError("--count must be at least 1") }
        guard duration > 0, warmUp >= 0, timeout > 0 else {
            throw ValidationError("--duration and --timeout must be greater than 0, --warm-up not negative")
        }
        if scenarios.contains("greeter"), greeter == nil {
            throw ValidationError("the greeter scenario needs --greeter")
        }
    }

    func run() async throws {
        let watched: [WatchedProcess]
        let addresses: [String: String]
        do {
            watched = try processes.map(WatchedProcess.init(argument:))
            var named = [
                "user": try CLISettings.value(SharedSettings.userServiceAddress, option: userService),
                "vessel": try CLISettings.value(SharedSettings.vesselServiceAddress, option: vesselService),
                "consignment": try CLISettings.value(
                    SharedSettings.consignmentServiceAddress, option: consignmentService),
            ]
            named["greeter"] = greeter
            addresses = named
        } catch {
            FileHandle.standardError.write(Data("shippy-bench: \(error)\n".utf8))
            throw ExitCode(64)
        }
        let selected =
            scenarios.isEmpty
            ? Scenario.all.filter { ($0.name != "greeter" || greeter != nil) && !skip.contains($0.name) }
            : scenarios.map { name in Scenario.all.first { $0.name == name }! }
        let prefix = self.prefix ?? "bench-\(Int(Date().timeIntervalSince1970))-"
        let options = { () -> CallOptions in
            var options = CallOptions.defaults
            options.timeout = .milliseconds(Int64(timeout * 1000))
            return options
        }()

        let results = try await withConnections(to: addresses, count: connections) { connections in
            var fixtures: Fixtures?
            if selected.contains(where: \.needsAccounts) {
                do {
                    fixtures = try await Fixtures.prepare(
                        prefix: prefix, users: connections["user"]!.client(0),
                        vessels: connections["vessel"]!.client(0),
                        adminToken: adminToken ?? ProcessInfo.processInfo.environment["SHIPPY_TOKEN"], options: options)
                } catch let refused as Fixtures.AdminTokenRefused {
                    FileHandle.standardError.write(
                        Data(
                            ("shippy-bench: vessel-service refused the admin's token (--admin-token or SHIPPY_TOKEN): "
                                + "\(refused.reason); log in again as an admin, or leave the token out\n").utf8))
                    throw ExitCode(64)
                } catch let error as RPCError where error.code == .unauthenticated {
                    // Sign-up answers a taken address like a new one; the log-in with this run's password tells.
                    FileHandle.standardError.write(
                        Data("shippy-bench: users with --prefix \(prefix) exist already: choose another prefix\n".utf8))
                    throw ExitCode(64)
                } catch {
                    FileHandle.standardError.write(
                        Data(
                            "shippy-bench: could not sign up the run's users at \(addresses["user"]!): \(error)\n".utf8)
                    )
                    throw ExitCode(69)
                }
                if fixtures?.ownVessel == nil {
                    FileHandle.standardError.write(
                        Data(
                            ("note: no admin's token (--admin-token), so bookings use the fleet's own room, which a "
                                + "long run can fill\n").utf8))
                }
            }
            var results: [ScenarioResult] = []
            for scenario in selected {
                let result = await measure(
                    scenario, connections: connections, fixtures: fixtures, watched: watched,
                    prefix: prefix, options: options)
                FileHandle.standardOutput.write(Data((result.text + "\n").utf8))
                results.append(result)
            }
            return results
        }
        if let json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(results).write(to: URL(fileURLWithPath: json))
        }
        let failures = results.reduce(0) { $0 + $1.failures }
        if failures > 0 {
            FileHandle.standardError.write(Data("shippy-bench: \(failures) calls failed (see above)\n".utf8))
            throw ExitCode(1)
        }
    }

    private func measure(
        _ scenario: Scenario, connections: [String: Connections], fixtures: Fixtures?, watched: [WatchedProcess],
        prefix: String, options: CallOptions
    ) async -> ScenarioResult {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        var pace = scenario.defaultPace(cores)
        switch (pace, concurrency, rate) {
        case (.burst, let calls?, _): pace = .burst(calls: calls)
        case (.burst, nil, _): break
        case (_, _, let rate?): pace = .open(perSecond: rate)
        case (_, let workers?, nil): pace = .closed(workers: workers)
        case (_, nil, nil): break
        }
        var options = options
        if let timeout = scenario.timeout { options.timeout = timeout }
        let recorder = Recorder()
        let sampler = ProcessSampler(watched)
        let context = ScenarioContext(
            connections: connections, fixtures: fixtures, recorder: recorder, options: options, prefix: prefix,
            readsBesideLogins: readsBesideLogins)
        FileHandle.standardError.write(Data("\(scenario.name) (\(pace))…\n".utf8))
        let elapsed = await runLoad(
            scenario.name, streams: scenario.streams(context, pace), warmUp: .milliseconds(Int64(warmUp * 1000)),
            limit: count.map { .count($0) } ?? .duration(.milliseconds(Int64(duration * 1000))), recorder: recorder,
            sampler: sampler)
        return ScenarioResult(
            scenario: scenario, pace: pace, seconds: elapsed.seconds, stats: recorder.results,
            processes: sampler.finish(), bcryptCeiling: scenario.hashes ? bcryptCeiling(cores: cores) : nil)
    }

    /// The machine's cores ÷ the CPU seconds of one hash at `bcryptCost`, hashed here (three times, the best).
    private func bcryptCeiling(cores: Int) -> Double {
        let cost = UInt8(clamping: bcryptCost)
        let best = (0..<3).map { _ in
            let before = seconds(on: CLOCK_THREAD_CPUTIME_ID)
            _ = Bcrypt.hash("shippy-bench ceiling", cost: cost)
            return seconds(on: CLOCK_THREAD_CPUTIME_ID) - before
        }.min()!
        return Double(cores) / best
    }
}

/// The time on `clock`, in seconds: this thread's CPU time (CLOCK_THREAD_CPUTIME_ID) or time since boot
/// (CLOCK_BOOTTIME, the base of /proc's process start times).
private func seconds(on clock: clockid_t) -> Double {
    var now = timespec()
    clock_gettime(clock, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

/// `shippy-bench serving-time`: how long a service took to answer SERVING, from its process's start.
struct ServingTime: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Wait for a service to be SERVING; print the milliseconds since its process started.")

    @Option(help: "The service's address (host:port).") var address: String
    @Option(help: "Its process, to measure from its start (default: from this command's start).") var pid: Int32?
    @Option(help: "Seconds to wait at most.") var within: Double = 60

    func run() async throws {
        let started = pid.flatMap(processStartSinceBoot) ?? seconds(on: CLOCK_BOOTTIME)
        let target = try ServiceAddress.target(address, key: "--address")
        let deadline = ContinuousClock.now + .milliseconds(Int64(within * 1000))
        var options = CallOptions.defaults
        options.timeout = .seconds(1)
        options.waitForReady = false
        // A new connection for each attempt: one client would wait out gRPC's reconnect backoff (a second).
        while ContinuousClock.now < deadline {
            let serving = try? await withGRPCClient(
                transport: try ServiceTransport(main: target, security: try CLISettings.security())
            ) { client in
                try await Grpc_Health_V1_Health.Client(wrapping: client).check(.init(), options: options).status
                    == .serving
            }
            if serving == true {
                print(String(format: "%.0f", (seconds(on: CLOCK_BOOTTIME) - started) * 1000))
                return
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        FileHandle.standardError.write(Data("shippy-bench: \(address) not SERVING within \(within) s\n".utf8))
        throw ExitCode(69)
    }
}

/// The process's start, in seconds since boot (field 22 of /proc/PID/stat, in clock ticks).
private func processStartSinceBoot(_ pid: Int32) -> Double? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
    else { return nil }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    // Fields after the command start at the third (state); the start time is the 22nd.
    guard fields.count > 19, let ticks = Double(fields[19]) else { return nil }
    return ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
}
