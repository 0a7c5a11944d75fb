import Crypto
import Foundation
import Glibc
import HummingbirdBcrypt
import Metrics
import NIOPosix
import ShippyDomain
import ShippyRuntime
import ShippyTelemetry

/// bcrypt hashing and checking, on a thread pool of its own: at cost 12 one hash takes a quarter of a
/// second of CPU, which must not stall Swift's cooperative executor.
///
/// Work is admitted through `admission`, one slot per thread: a call waits for a slot only when it can be served
/// within its deadline (`CallDeadline`) and the configured wait, in a queue fair between clients
/// (`ClientAddress`), and is refused at once with `unavailable` otherwise. So a burst of sign-ups is served
/// while a flood of logins (wrong passwords and unknown emails cost the same, through the decoy) cannot build a
/// queue in which real logins time out.
struct PasswordHasher: Sendable {
    let cost: UInt8
    private let threads: NIOThreadPool
    let admission: AdmissionGate
    /// A real hash of a random password: checking an unknown email against it takes as long as checking
    /// a real one, so response times do not tell which emails are registered. Made in the background, so
    /// that the service is SERVING without waiting a hash's time; a login for an unknown email waits for it.
    let decoyHash: Task<String, any Error>

    /// Starts the threads and the decoy hash on them (never on Swift's cooperative executor). The decoy goes
    /// through the admission too, so that it takes a slot and is the first measure of a hash's time.
    /// - Parameter admission: the queue's bound and longest wait (`BCRYPT_QUEUE`, `BCRYPT_MAX_WAIT`).
    static func start(
        cost: UInt8, threads count: Int, admission policy: @escaping @Sendable () -> AdmissionGate.Policy
    ) async throws -> PasswordHasher {
        let threads = NIOThreadPool(numberOfThreads: count)
        threads.start()
        // A guess until the decoy is measured: about 60 µs per unit of 2^cost on a current core.
        let admission = AdmissionGate(
            workers: count, policy: policy, expectedWorkTime: .microseconds(60 << Int(cost)),
            busyMessage: "user-service is busy with other sign-ups and logins; retry in a moment")
        let decoy = Task {
            try await admission.run(client: "", deadline: nil) {
                try await threads.runIfActive {
                    yieldToOtherWork()
                    return Bcrypt.hash(String(UInt64.random(in: .min ... .max), radix: 36), cost: cost)
                }
            }
        }
        return PasswordHasher(cost: cost, threads: threads, admission: admission, decoyHash: decoy)
    }

    /// - Throws: `ShippyError` `.unavailable` when it cannot be served in time.
    func hash(_ password: String) async throws -> String {
        let cost = self.cost
        return try await admitted("bcrypt hash") {
            try await threads.runIfActive {
                Self.yieldToOtherWork()
                return Bcrypt.hash(Self.bcryptInput(password), cost: cost)
            }
        }
    }

    /// Whether `password` matches `hash`; with no hash (unknown user) it checks the decoy and says no.
    /// - Throws: `ShippyError` `.unavailable` when it cannot be served in time.
    func verify(_ password: String, hash: String?) async throws -> Bool {
        let decoy = hash == nil ? try await decoyHash.value : ""
        let matches = try await admitted("bcrypt verify") {
            try await threads.runIfActive {
                Self.yieldToOtherWork()
                return Bcrypt.verify(Self.bcryptInput(password), hash: hash ?? decoy)
            }
        }
        return matches && hash != nil
    }

    /// What bcrypt is given for `password`: the password itself up to bcrypt's 72 bytes (every hash stored before
    /// longer passwords were taken is of this form), and beyond them its SHA-256 in base64 (44 bytes, no NUL), so
    /// that no byte of a long password is ignored.
    static func bcryptInput(_ password: String) -> String {
        guard password.utf8.count > 72 else { return password }
        return "sha256:" + Data(SHA256.hash(data: Data(password.utf8))).base64EncodedString()
    }

    /// `bcrypt_queue_depth` (works running or waiting for a thread), `bcrypt_refused_total`.
    private static let depth = Gauge(label: "bcrypt_queue_depth")
    private static let refused = Counter(label: "bcrypt_refused_total")

    /// Runs `work` through the admission gate, for the current call's client and deadline, in a span of its own,
    /// keeping the queue's figures.
    private func admitted<T: Sendable>(_ name: String, _ work: () async throws -> T) async throws -> T {
        try await traced(name, ofKind: .internal, attributes: ["bcrypt.cost": "\(cost)"]) { () async throws in
            do {
                return try await admission.run(client: ClientAddress.current ?? "", deadline: CallDeadline.current) {
                    Self.depth.record(admission.inFlight)
                    defer { Self.depth.record(admission.inFlight - 1) }
                    return try await work()
                }
            } catch let error as ShippyError where error.code == .unavailable {
                Self.refused.increment()
                throw error
            }
        }
    }

    /// Lowers the scheduling priority of the calling hashing thread (nice 10): hashes still use every idle
    /// cycle, but when the cores are busy the event loops answering calls (and refusing the excess) run
    /// first, so a flood of logins cannot starve the rest of the service. A cheap syscall, repeated per hash
    /// because the pool gives no hook at thread start.
    private static func yieldToOtherWork() {
        // On Linux the nice value belongs to the thread, and `who = 0` names the calling thread.
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 10)
    }

    func shutdown() async {
        try? await threads.shutdownGracefully()
    }
}
