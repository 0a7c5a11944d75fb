/// Rules for the free text people type (names, companies, descriptions, customer ids, origins): bounded in
/// length and free of control characters, so that no value can forge a header line in a mail or a line in a log.
public enum TextRules {
    /// - Throws: `ShippyError` `.invalidArgument` naming `field` when `value` is empty (and `required`), longer
    ///   than `maximumLength` characters, or holds a control character.
    public static func check(
        _ value: String,
        field: String,
        maximumLength: Int,
        required: Bool = true
    ) throws(ShippyError) {
        if required && value.allSatisfy(\.isWhitespace) { throw .invalidArgument("\(field) must not be empty") }
        if value.count > maximumLength {
            throw .invalidArgument("\(field) must be at most \(maximumLength) characters (got \(value.count))")
        }
        if hasControlCharacters(value) {
            throw .invalidArgument("\(field) must not contain control characters (line breaks, tabs, escapes)")
        }
    }

    /// C0 and C1 controls (CR, LF, TAB, ESC, NUL, …), the Unicode line and paragraph separators, and the
    /// bidirectional overrides that make text display in another order than it is stored.
    public static func hasControlCharacters(_ value: String) -> Bool {
        value.unicodeScalars.contains { scalar in
            scalar.properties.generalCategory == .control || (0x2028...0x2029).contains(scalar.value)
                || (0x202A...0x202E).contains(scalar.value) || (0x2066...0x2069).contains(scalar.value)
        }
    }
}
