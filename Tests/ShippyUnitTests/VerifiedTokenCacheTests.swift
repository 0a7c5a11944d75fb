import Foundation
import JWTKit
import ShippyDomain
import ShippyIdentity
import ShippyRuntime
import Synchronization
import Testing

/// The cache of verified tokens: a genuine token is verified once per `maximumAge`, a forged one every time,
/// an expired one never served, and the cache never holds more than its capacity.
@Suite struct VerifiedTokenCacheTests {
    /// The real verifier, counting how often the cache asks it.
    final class CountingVerifier: TokenVerifying {
        let verifier: TokenVerifier
        let calls = Mutex(0)
        init(_ verifier: TokenVerifier) { self.verifier = verifier }
        func verify(_ token: String) async throws(ShippyError) -> AccessClaims {
            calls.withLock { $0 += 1 }
            return try await verifier.verify(token)
        }
        var count: Int { calls.withLock { $0 } }
    }

    let signer: TokenSigner
    let counting: CountingVerifier

    init() async {
        signer = await TokenSigner(
            privateKey: ES256PrivateKey(), issuer: "shippy-user-service", audience: "shippy", lifetime: .seconds(3600))
        counting = CountingVerifier(signer.verifier)
    }

    func token(_ n: Int, lifetime: Duration = .seconds(3600)) async throws -> String {
        let user = User(id: "user-\(n)", name: "Ann", company: "Acme", email: "ann\(n)@example.com")
        return try await signer.sign(user, now: Date().addingTimeInterval(lifetime.seconds - 3600))
    }

    @Test func aGenuineTokenIsVerifiedOnceThenServedFromTheCache() async throws {
        let cache = VerifiedTokenCache(counting)
        let token = try await token(1)
        for _ in 0..<5 { #expect(try await cache.verify(token).email == "ann1@example.com") }
        #expect(counting.count == 1)
    }

    @Test func aForgedTokenIsVerifiedEveryTimeAndNeverKept() async throws {
        let cache = VerifiedTokenCache(counting)
        let parts = try await token(1).split(separator: ".")
        let forged = "\(parts[0]).\(parts[1]).\(String(parts[2].reversed()))"
        for _ in 0..<3 { await #expect(throws: ShippyError.self) { try await cache.verify(forged) } }
        #expect(counting.count == 3)
        #expect(cache.count == 0)
    }

    @Test func anEntryIsVerifiedAgainAfterItsMaximumAge() async throws {
        let cache = VerifiedTokenCache(counting, maximumAge: .milliseconds(50))
        let token = try await token(1)
        _ = try await cache.verify(token)
        try await Task.sleep(for: .milliseconds(60))
        _ = try await cache.verify(token)
        #expect(counting.count == 2)
    }

    @Test func anExpiredTokenIsRefusedEvenAfterItWasCached() async throws {
        let cache = VerifiedTokenCache(counting)
        let token = try await token(1, lifetime: .seconds(2))  // expires two seconds from now
        _ = try await cache.verify(token)
        try await Task.sleep(for: .milliseconds(2100))
        await #expect(throws: ShippyError.self) { try await cache.verify(token) }
    }

    @Test func theCacheNeverHoldsMoreThanItsCapacity() async throws {
        let cache = VerifiedTokenCache(counting, capacity: 8)
        for n in 0..<30 { _ = try await cache.verify(try await token(n)) }
        #expect(cache.count <= 8)
        #expect(counting.count == 30)
    }
}

extension Duration {
    fileprivate var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
