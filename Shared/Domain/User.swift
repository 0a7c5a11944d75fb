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

    /// bcrypt reads at most 72 bytes: a longer password would be silently truncated, so it is refused.
    public static let maximumPasswordBytes = 72
    public static let minimumPasswordLength = 8
    public static let maximumFieldLength = 200

    /// Trims the name, company and email; the password is kept exactly as typed.
    public init(name: String, company: String, email: String, password: String) {
        self.name = name.trimmingCharacters(in: .whitespacesAndNewlines)
        self.company = company.trimmingCharacters(in: .whitespacesAndNewlines)
        self.email = email.trimmingCharacters(in: .whitespacesAndNewlines)
        self.password = password
    }

    /// Checks the sign-up rules.
    /// - Throws: `ShippyError` `.invalidArgument` naming the first field that breaks a rule.
    public func validate() throws(ShippyError) {
        try TextRules.check(name, field: "name", maximumLength: Self.maximumFieldLength)
        try TextRules.check(company, field: "company", maximumLength: Self.maximumFieldLength, required: false)
        if !Self.isPlausibleEmail(email) {
            throw .invalidArgument("email \"\(email.prefix(Self.maximumFieldLength))\" is not a valid address")
        }
        if password.count < Self.minimumPasswordLength {
            throw .invalidArgument("password must be at least \(Self.minimumPasswordLength) characters")
        }
        if password.utf8.count > Self.maximumPasswordBytes {
            throw .invalidArgument("password must be at most \(Self.maximumPasswordBytes) bytes (bcrypt's limit)")
        }
        if password.utf8.contains(0) { throw .invalidArgument("password must not contain a NUL character") }
    }

    /// One `@`, a non-empty local part, a dotted domain, no spaces or control characters, at most 254 bytes.
    public static func isPlausibleEmail(_ email: String) -> Bool {
        guard email.utf8.count <= 254,
            !email.contains(where: { $0.isWhitespace || $0.asciiValue.map { $0 < 32 } == true })
        else { return false }
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[0].count <= 64 else { return false }
        let labels = parts[1].split(separator: ".", omittingEmptySubsequences: false)
        return labels.count >= 2 && labels.allSatisfy { !$0.isEmpty && !$0.hasPrefix("-") && !$0.hasSuffix("-") }
    }
}
