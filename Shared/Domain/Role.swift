/// What a token's holder may do. Roles are stored with the user; they travel in the token and are checked
/// locally by every service.
public enum Role: String, Sendable, Hashable, CaseIterable {
    /// Registers vessels, reads any user, confirms or releases any booking.
    case admin
    /// Signs up, ships and lists their own consignments, reads their own user.
    case user

    /// The roles of a user who holds `admin` or not: an admin is not also listed as a plain user.
    public static func roles(admin: Bool) -> [Role] { admin ? [.admin] : [.user] }
}
