/// Rules for the free text people type (names, companies, descriptions, customer ids, origins): bounded in
/// length and free of control characters, so that no value can forge a header line in a mail or a line in a log.
///
/// Lengths count Unicode code points, as JSON Schema's `maxLength` does, so that the OpenAPI document states the
/// same rule; a bound in code points bounds the bytes too (at most 4 each). The document's `pattern`s are made
/// from the same ranges (`pattern(required:)`), and a unit test holds the two together.
public enum TextRules {
    /// - Throws: `ShippyError` `.invalidArgument` naming `field` when `value` is blank (and `required`), longer
    ///   than `maximumLength` code points, or holds a control character.
    public static func check(
        _ value: String,
        field: String,
        maximumLength: Int,
        required: Bool = true
    ) throws(ShippyError) {
        if hasControlCharacters(value) {
            throw .invalidArgument("\(field) must not contain control characters (line breaks, tabs, escapes)")
        }
        if required && !value.unicodeScalars.contains(where: { !isBlank($0) }) {
            throw .invalidArgument("\(field) must not be empty or only spaces")
        }
        let length = value.unicodeScalars.count
        if length > maximumLength {
            throw .invalidArgument("\(field) must be at most \(maximumLength) characters (got \(length))")
        }
    }

    /// C0 and C1 controls (CR, LF, TAB, ESC, NUL, …), the Unicode line and paragraph separators, the
    /// bidirectional embeddings and overrides that make text display in another order than it is stored, and the
    /// isolates.
    public static let controls: [ClosedRange<UInt32>] = [0x00...0x1F, 0x7F...0x9F, 0x2028...0x202E, 0x2066...0x2069]
    /// Unicode's White_Space characters that are not controls: a required text needs something else.
    public static let blanks: [ClosedRange<UInt32>] = [
        0x20...0x20, 0xA0...0xA0, 0x1680...0x1680, 0x2000...0x200A, 0x202F...0x202F, 0x205F...0x205F,
        0x3000...0x3000,
    ]

    public static func hasControlCharacters(_ value: String) -> Bool {
        value.unicodeScalars.contains { scalar in controls.contains { $0.contains(scalar.value) } }
    }

    static func isBlank(_ scalar: Unicode.Scalar) -> Bool { blanks.contains { $0.contains(scalar.value) } }

    /// Whether `text` is ASCII letters, digits and `others` only: the alphabet of ids and keys.
    public static func isASCII(_ text: String, lettersDigitsAnd others: String) -> Bool {
        text.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || others.utf8.contains(byte)
        }
    }

    /// The rules as a regular expression that ECMA-262 (JSON Schema's dialect) and Python read alike: no control
    /// character; and when `required`, one character at least that is not blank.
    public static func pattern(required: Bool) -> String {
        func characterClass(excluding ranges: [ClosedRange<UInt32>]) -> String {
            let members = ranges.map { range in
                range.count == 1
                    ? escaped(range.lowerBound) : "\(escaped(range.lowerBound))-\(escaped(range.upperBound))"
            }
            return "[^" + members.joined() + "]"
        }
        let allowed = characterClass(excluding: controls)
        guard required else { return "^\(allowed)*$" }
        return "^\(allowed)*\(characterClass(excluding: controls + blanks))\(allowed)*$"
    }

    private static func escaped(_ value: UInt32) -> String {
        let hex = String(value, radix: 16, uppercase: true)
        return "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
    }
}
