import HummingbirdBcrypt
import NIOPosix

/// bcrypt hashing and checking, on a thread pool of its own: at cost 12 one hash takes a quarter of a
/// second of CPU, which must not stall Swift's cooperative executor.
struct PasswordHasher: Sendable {
    let cost: UInt8
    private let threads: NIOThreadPool
    /// A real hash of a random password: checking an unknown email against it takes as long as checking
    /// a real one, so response times do not tell which emails are registered.
    let decoyHash: String

    init(cost: UInt8, threads: Int) {
        self.cost = cost
        self.threads = NIOThreadPool(numberOfThreads: threads)
        self.threads.start()
        self.decoyHash = Bcrypt.hash(String(UInt64.random(in: .min ... .max), radix: 36), cost: cost)
    }

    func hash(_ password: String) async throws -> String {
        let cost = self.cost
        return try await threads.runIfActive { Bcrypt.hash(password, cost: cost) }
    }

    /// Whether `password` matches `hash`; with no hash (unknown user) it checks the decoy and says no.
    func verify(_ password: String, hash: String?) async throws -> Bool {
        let decoy = decoyHash
        let matches = try await threads.runIfActive { Bcrypt.verify(password, hash: hash ?? decoy) }
        return matches && hash != nil
    }

    func shutdown() async {
        try? await threads.shutdownGracefully()
    }
}
