/// What a token's holder may do. Roles travel in the token and are checked locally by every service.
public enum Role: String, Sendable, Hashable, CaseIterable {
    /// Registers vessels, reads any user, confirms or releases any booking.
    case admin
    /// Signs up, ships and lists their own consignments, reads their own user.
    case user

    /// The roles of the user with `email`: `admin` for the configured emails (any letter case), else `user`.
    public static func roles(forEmail email: String, adminEmails: Set<String>) -> [Role] {
        adminEmails.contains(email.lowercased()) ? [.admin] : [.user]
    }
}
