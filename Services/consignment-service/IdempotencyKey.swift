import Crypto
import Foundation
import GRPCCore
import ShippyDomain

/// The `idempotency-key` a client may send with `CreateConsignment`: a retry with the same key by the same
/// user answers the first result and books nothing new.
///
/// The key is not stored apart: it decides the consignment's id (a digest of the user and the key), and every
/// step of the booking is idempotent by that id. So a key is remembered for as long as its consignment exists.
struct IdempotencyKey: Sendable, Hashable {
    static let metadataKey = "idempotency-key"
    let value: String

    /// The key in `metadata`, or `nil` when the client sent none.
    /// - Throws: `ShippyError` `.invalidArgument` for a key that breaks `IdempotencyKeyRule`.
    init?(_ metadata: Metadata) throws(ShippyError) {
        guard let value = metadata[stringValues: Self.metadataKey].first(where: { _ in true }) else { return nil }
        try IdempotencyKeyRule.check(value)
        self.value = value
    }

    /// The consignment id this key stands for, for `owner`: the first 16 bytes of a SHA-256, written as a UUID.
    func consignmentID(owner: String) -> String {
        let digest = Array(SHA256.hash(data: Data("\(owner)\n\(value)".utf8)).prefix(16))
        return UUID(
            uuid: (
                digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7],
                digest[8], digest[9], digest[10], digest[11], digest[12], digest[13], digest[14], digest[15]
            )
        ).uuidString.lowercased()
    }
}
