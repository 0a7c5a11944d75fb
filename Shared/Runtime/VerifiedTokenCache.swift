import Foundation
import ShippyDomain
import ShippyIdentity
import Synchronization

/// Remembers tokens that verified, so that a caller's next calls skip the signature check (an ES256
/// verification costs more than the whole gRPC call around it).
///
/// Bounded: at most `capacity` tokens. An entry never outlives the token's `exp`, nor `maximumAge`, after
/// which the token is verified again: a key removed from the key file stops being trusted within the file's
/// refresh interval plus `maximumAge`. Only verified tokens are kept, so a forged token costs exactly one
/// verification every time, and cannot push genuine ones out.
public final class VerifiedTokenCache: TokenVerifying {
    private let verifier: any TokenVerifying
    private let capacity: Int
    private let maximumAge: Duration
    private struct Entry {
        var claims: AccessClaims
        var verifiedAt: ContinuousClock.Instant
    }
    private let entries = Mutex<[String: Entry]>([:])

    public init(_ verifier: any TokenVerifying, capacity: Int = 4096, maximumAge: Duration = .seconds(10)) {
        self.verifier = verifier
        self.capacity = capacity
        self.maximumAge = maximumAge
    }

    public func verify(_ token: String) async throws(ShippyError) -> AccessClaims {
        let now = ContinuousClock.now
        if let entry = entries.withLock({ $0[token] }), isFresh(entry, now: now) { return entry.claims }
        let claims = try await verifier.verify(token)
        let entry = Entry(claims: claims, verifiedAt: now)
        entries.withLock { entries in
            if entries.count >= capacity {
                entries = entries.filter { isFresh($0.value, now: now) }
                // Still full of live tokens: forget an arbitrary half rather than grow.
                if entries.count >= capacity {
                    entries = Dictionary(uniqueKeysWithValues: entries.prefix(capacity / 2).map { ($0.key, $0.value) })
                }
            }
            entries[token] = entry
        }
        return claims
    }

    private func isFresh(_ entry: Entry, now: ContinuousClock.Instant) -> Bool {
        now - entry.verifiedAt < maximumAge && entry.claims.exp.value > Date()
    }

    /// Tokens remembered now.
    public var count: Int { entries.withLock { $0.count } }
}
