/// What a client's idempotency key may be (the `idempotency-key` metadata, the `Idempotency-Key` header): 1 to
/// 128 ASCII letters, digits, `.`, `_`, `:` and `-` (a UUID is one). Written once for consignment-service, the
/// gateway and the OpenAPI document (`pattern`); none of these characters changes when an HTTP header is
/// percent-decoded, so the key is the same as sent whichever layer reads it.
public enum IdempotencyKeyRule {
    public static let maximumLength = 128
    /// The rule as a regular expression, for the OpenAPI document.
    public static let pattern = "^[A-Za-z0-9._:-]{1,128}$"

    /// - Throws: `ShippyError` `.invalidArgument` for an empty or over-long key, or one with other characters.
    public static func check(_ key: String) throws(ShippyError) {
        guard (1...maximumLength).contains(key.utf8.count), TextRules.isASCII(key, lettersDigitsAnd: "._:-") else {
            throw .invalidArgument(
                "idempotency-key must be 1 to \(maximumLength) ASCII letters, digits, '.', '_', ':' or '-'")
        }
    }
}
