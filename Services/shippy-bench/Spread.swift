import ArgumentParser
import Foundation
import GRPCCore
import ShippyCLI
import ShippyConfiguration
import ShippyContracts
import ShippyDiscovery
import Synchronization

/// `shippy-bench spread`: idempotent calls (`FindAvailable`) through the same client transport the services use,
/// counted by the replica that answered. The multi-host tests read its lines while they kill, cut off and add
/// replicas.
struct Spread: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Call vessel-service's replicas through discovery and report the calls each one answered.",
        discussion: """
            Every half second a JSON line on standard output: {"seconds", "calls", "failures", "replicas": \
            {address: calls}, "errors": {code: count}, "slowest_ms"}, totals so far (slowest_ms: the slowest call \
            that succeeded); the last line has "done": true. The same as progress on stderr.
            Ctrl-C (SIGINT) ends the run early with its totals.
            Exit status: 0 every call succeeded, 1 some failed, 64 bad usage.
            """)

    @Option(help: "vessel-service, e.g. dns:///vessel.shippy.test:50052.") var vesselService: String
    @Option(help: "Replicas in this client's zone, tried first.") var zone: String?
    @Option(help: "A canary vessel-service that gets --canary-percent of the calls.") var canary: String?
    @Option(help: "Percentage of calls for --canary.") var canaryPercent = 0
    @Option(help: "A file holding the access token (see user-cli login).") var tokenFile: String
    @Option(help: "Calls in flight at once.") var concurrency = 4
    @Option(help: "Stop after this many calls.") var calls: Int?
    @Option(help: "Stop after this many seconds.") var duration: Double?
    @Option(help: "Calls started per second at most (default: as fast as they answer).") var rate: Double?
    @Option(help: "Deadline of each call, in seconds.") var timeout: Double = 5

    func validate() throws {
        guard (calls == nil) != (duration == nil) else { throw ValidationError("give one of --calls and --duration") }
        guard concurrency > 0, timeout > 0, (0...100).contains(canaryPercent) else {
            throw ValidationError("--concurrency and --timeout must be positive, --canary-percent 0…100")
        }
        if let rate, rate <= 0 { throw ValidationError("--rate must be greater than 0") }
    }

    func run() async throws {
        let token = try TokenInput.resolve(argument: nil, file: tokenFile)
        let share = Double(canaryPercent) / 100
        let transport = try ServiceTransport(
            main: try ServiceAddress.target(vesselService, key: "--vessel-service"),
            zone: try zone.map { try ServiceAddress.target($0, key: "--zone") },
            canary: try canary.map { try ServiceAddress.target($0, key: "--canary") }, canaryShare: { share },
            serviceConfig: RetryPolicies.serviceConfig(waitForReady: true), security: try CLISettings.security())
        let tally = Tally()
        let client = GRPCClient(transport: transport, interceptors: [tally])
        let options = CallOptions.withTimeout(seconds: timeout)
        let started = ContinuousClock.now
        let limit = calls
        let end = duration.map { started + .milliseconds(Int64($0 * 1000)) }
        let interval = rate.map { Duration.seconds(1 / $0) }
        // Ctrl-C (SIGINT) ends the run as reaching its limit does: no new calls, those in flight finish, totals.
        signal(SIGINT, SIG_IGN)
        let interrupt = DispatchSource.makeSignalSource(signal: SIGINT)
        interrupt.setEventHandler { tally.stop() }
        interrupt.resume()

        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await client.runConnections() }
            let vessels = Vessel_VesselService.Client(wrapping: client)
            let reporter = Task {
                while true {
                    try await Task.sleep(for: .milliseconds(500))
                    tally.report(since: started, done: false)
                }
            }
            await withDiscardingTaskGroup { workers in
                for _ in 0..<concurrency {
                    workers.addTask {
                        while true {
                            let number = tally.nextCall()
                            if let limit, number > limit { return }
                            if let end, ContinuousClock.now >= end { return }
                            if tally.stopped { return }
                            if let interval {
                                try? await Task.sleep(until: started + interval * (number - 1), clock: .continuous)
                            }
                            let callStarted = ContinuousClock.now
                            do {
                                _ = try await vessels.findAvailable(
                                    .with {
                                        $0.capacity = 1; $0.maxWeight = 1
                                    },
                                    metadata: ["authorization": "Bearer \(token)"], options: options)
                                tally.succeeded(in: ContinuousClock.now - callStarted)
                            } catch let error as RPCError {
                                tally.failed("\(error.code)", message: error.message)
                            } catch {
                                tally.failed("\(type(of: error))", message: "\(error)")
                            }
                        }
                    }
                }
            }
            reporter.cancel()
            tally.report(since: started, done: true)
            client.beginGracefulShutdown()
        }
        if tally.failures > 0 { throw ExitCode.failure }
    }
}

/// Counts calls by the replica that answered (the peer of the attempt that succeeded) and failures by code.
private final class Tally: ClientInterceptor, Sendable {
    private struct Counts {
        var calls = 0
        var failures = 0
        var replicas: [String: Int] = [:]
        var errors: [String: Int] = [:]
        var slowest: Duration = .zero
    }
    private let counts = Mutex(Counts())
    private let issued = Atomic<Int>(0)
    private let stopRequested = Atomic<Bool>(false)

    var stopped: Bool { stopRequested.load(ordering: .relaxed) }
    func stop() { stopRequested.store(true, ordering: .relaxed) }

    /// Numbers the calls from 1, across the workers.
    func nextCall() -> Int { issued.add(1, ordering: .relaxed).newValue }

    var failures: Int { counts.withLock { $0.failures } }

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingClientRequest<Input>, context: ClientContext,
        next: (StreamingClientRequest<Input>, ClientContext) async throws -> StreamingClientResponse<Output>
    ) async throws -> StreamingClientResponse<Output> {
        let response = try await next(request, context)
        if case .success = response.accepted {
            let peer = context.remotePeer.replacingOccurrences(of: "ipv4:", with: "")
            counts.withLock { $0.replicas[peer, default: 0] += 1 }
        }
        return response
    }

    func succeeded(in duration: Duration) {
        counts.withLock {
            $0.calls += 1
            $0.slowest = max($0.slowest, duration)
        }
    }

    /// Counts a failed call; the first twenty are described on stderr.
    func failed(_ code: String, message: String) {
        let failures = counts.withLock {
            $0.calls += 1
            $0.failures += 1
            $0.errors[code, default: 0] += 1
            return $0.failures
        }
        if failures <= 20 { FileHandle.standardError.write(Data("  spread: call failed: \(code): \(message)\n".utf8)) }
    }

    func report(since start: ContinuousClock.Instant, done: Bool) {
        let counts = counts.withLock { $0 }
        let seconds = (ContinuousClock.now - start).seconds
        let line: [String: Any] = [
            "seconds": (seconds * 10).rounded() / 10, "calls": counts.calls, "failures": counts.failures,
            "replicas": counts.replicas, "errors": counts.errors, "done": done,
            "slowest_ms": Int(counts.slowest.seconds * 1000),
        ]
        if let data = try? JSONSerialization.data(withJSONObject: line, options: [.sortedKeys]) {
            FileHandle.standardOutput.write(data + Data("\n".utf8))
        }
        let replicas = counts.replicas.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
        FileHandle.standardError.write(
            Data(
                "  spread: \(Int(seconds)) s, \(counts.calls) calls, \(counts.failures) failed; \(replicas.joined(separator: ", "))\n"
                    .utf8))
    }
}

extension CallOptions {
    fileprivate static func withTimeout(seconds: Double) -> CallOptions {
        var options = CallOptions.defaults
        options.timeout = .milliseconds(Int64(seconds * 1000))
        return options
    }
}
