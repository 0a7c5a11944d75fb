import Foundation

/// A registered user as every service may see it: never a password, never a hash.
public struct User: Sendable, Hashable {
    public var id: String
    public var name: String
    public var company: String
    public var email: String
    /// What the user may do: granted by an admin or the operator, stored with the user, never claimed at sign-up.
    public var roles: [Role]

    public init(id: String, name: String, company: String, email: String, roles: [Role] = [.user]) {
        self.id = id
        self.name = name
        self.company = company
        self.email = email
        self.roles = roles
    }
}

/// A sign-up request: the user's details and the password that the user service hashes and then forgets.
public struct NewUser: Sendable {
    public var name: String
    public var company: String
    public var email: String
    public var password: String

    /// In Unicode code points, as the OpenAPI document's `minLength` and `maxLength` count. (bcrypt reads at most 72
    /// bytes: user-service hashes a longer password with SHA-256 first, so that none is silently truncated.)
    public static let minimumPasswordLength = 8
    public static let maximumPasswordLength = 1_024
    public static let maximumFieldLength = 200

    /// Puts the email in its canonical form when it is valid (`validate` refuses it otherwise); the name, company
    /// and password are kept exactly as typed, so that the rules the OpenAPI document states hold of what was sent.
    public init(name: String, company: String, email: String, password: String) {
        self.name = name
        self.company = company
        self.email = (try? EmailAddress.canonical(email)) ?? email
        self.password = password
    }

    /// Checks the sign-up rules.
    /// - Throws: `ShippyError` `.invalidArgument` naming the first field that breaks a rule.
    public func validate() throws(ShippyError) {
        try TextRules.check(name, field: "name", maximumLength: Self.maximumFieldLength)
        try TextRules.check(company, field: "company", maximumLength: Self.maximumFieldLength, required: false)
        _ = try EmailAddress.canonical(email)
        try Self.validate(password: password)
    }

    /// The password rules, at sign-up and at a change of password.
    /// - Throws: `ShippyError` `.invalidArgument` saying which `field` breaks which rule.
    public static func validate(password: String, field: String = "password") throws(ShippyError) {
        let length = password.unicodeScalars.count
        if length < minimumPasswordLength {
            throw .invalidArgument("\(field) must be at least \(minimumPasswordLength) characters")
        }
        if length > maximumPasswordLength {
            throw .invalidArgument("\(field) must be at most \(maximumPasswordLength) characters (got \(length))")
        }
        if password.utf8.contains(0) { throw .invalidArgument("\(field) must not contain a NUL character") }
    }

}

/// Email addresses as Shippy accepts, stores and compares them: ASCII only, in RFC 5321's dot-atom syntax
/// (no quoted local parts, no address literals, no comments), lowercased. One canonical form, computed once,
/// on which Swift and PostgreSQL agree under any database locale: with non-ASCII text allowed, a Kelvin sign,
/// an NFD "é" or a locale's case folding could make two spellings of one address, or one of two.
public enum EmailAddress {
    /// RFC 5321's limits: 64 octets of local part, 255 of domain, 254 in all in a path.
    public static let maximumBytes = 254
    public static let maximumLocalBytes = 64

    /// `atext` of RFC 5322 §3.2.3: what a dot-atom's parts may hold besides letters and digits.
    private static let atextSymbols = Set("!#$%&'*+-/=?^_`{|}~".utf8)

    /// The canonical form of `raw`: trimmed and lowercased, once it is checked.
    /// - Throws: `ShippyError` `.invalidArgument` saying what is wrong.
    public static func canonical(_ raw: String) throws(ShippyError) -> String {
        let email = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        let shown = "\"\(email.prefix(80))\""
        guard !email.isEmpty else { throw .invalidArgument("email is required") }
        guard email.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else {
            throw .invalidArgument(
                "email \(shown) must be plain ASCII without spaces (internationalised addresses are not accepted)")
        }
        guard email.utf8.count <= maximumBytes else {
            throw .invalidArgument("email is longer than \(maximumBytes) bytes")
        }
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2 else { throw .invalidArgument("email \(shown) must hold exactly one @") }
        let (local, domain) = (parts[0], parts[1])
        guard !local.isEmpty, local.utf8.count <= maximumLocalBytes, isDotAtom(local) else {
            throw .invalidArgument(
                "email \(shown): the part before @ must be 1 to 64 letters, digits or !#$%&'*+-/=?^_`{|}~, "
                    + "in dot-separated words")
        }
        guard isHostName(domain) else {
            throw .invalidArgument(
                "email \(shown): the domain must be a dotted name of letters, digits and hyphens (example.com)")
        }
        return email.lowercased()
    }

    private static func isDotAtom(_ text: Substring) -> Bool {
        text.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { word in
            !word.isEmpty && word.utf8.allSatisfy { isLetterOrDigit($0) || atextSymbols.contains($0) }
        }
    }

    private static func isHostName(_ text: Substring) -> Bool {
        let labels = text.split(separator: ".", omittingEmptySubsequences: false)
        return labels.count >= 2 && text.utf8.count <= 253
            && labels.allSatisfy { label in
                (1...63).contains(label.utf8.count) && label.first != "-" && label.last != "-"
                    && label.utf8.allSatisfy { isLetterOrDigit($0) || $0 == UInt8(ascii: "-") }
            }
    }

    private static func isLetterOrDigit(_ byte: UInt8) -> Bool {
        (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
    }
}
