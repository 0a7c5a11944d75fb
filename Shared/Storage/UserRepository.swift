import Foundation
import ShippyDomain

/// A role granted or revoked: what the audit trail records (who, whom, what, when).
public struct RoleChange: Sendable, Hashable {
    public var role: Role
    public var granted: Bool
    /// Whose role changes: an email, in any letter case.
    public var email: String
    /// Who changes it: an admin's user id, or `operator` for user-service's own command.
    public var actor: String

    public init(role: Role, granted: Bool, email: String, actor: String) {
        self.role = role
        self.granted = granted
        self.email = email
        self.actor = actor
    }
}

/// How presenting a refresh token went.
public enum SessionRotation: Sendable, Equatable {
    /// The token is spent and its successor stored; the user as stored now (roles read again).
    case rotated(User)
    /// Never issued, revoked, or expired.
    case invalid
    /// Spent before: presented twice, so one copy is in the wrong hands. The whole login is now revoked.
    case reused
}

/// Where users and their password hashes are kept. Only the user service holds one.
public protocol UserRepository: Sendable {
    /// Stores an event that announces no change of its own (a sign-up with a taken address), to publish.
    func record(_ event: OutboxEvent) async throws(ShippyError)

    /// Stores a new user with the bcrypt hash of their password and, in the same transaction, the event
    /// that announces it: both are stored or neither.
    /// - Throws: `ShippyError` `.alreadyExists` when the email is taken in any letter case, `.unavailable`.
    func create(_ user: User, passwordHash: String, event: OutboxEvent) async throws(ShippyError)

    /// The user with this id, or `nil`.
    func user(id: String) async throws(ShippyError) -> User?

    /// The user with this email (any letter case) and their password hash, or `nil`; for login only.
    func credentials(email: String) async throws(ShippyError) -> (user: User, passwordHash: String)?

    /// Every user, oldest first, a page at a time.
    func users(page: PageRequest) async throws(ShippyError) -> Page<User>

    /// Grants or revokes a role and records the change in the audit trail, in one transaction.
    /// - Returns: the user as changed, or `nil` when no user has that email.
    func change(_ change: RoleChange) async throws(ShippyError) -> User?

    /// Starts a login: stores the hash of its first refresh token.
    func startSession(userID: String, tokenHash: [UInt8], expiresAt: Date) async throws(ShippyError)

    /// Spends the refresh token with `tokenHash` and stores its successor in the same login, atomically: of two
    /// calls with one token, one rotates and the other finds it spent (and revokes the login).
    func rotateSession(
        tokenHash: [UInt8], to successor: [UInt8], expiresAt: Date
    ) async throws(ShippyError)
        -> SessionRotation

    /// Revokes the login that the token with `tokenHash` belongs to.
    /// - Returns: whether there was a live one.
    func endSession(tokenHash: [UInt8]) async throws(ShippyError) -> Bool

    /// Revokes every login of the user.
    /// - Returns: how many were live.
    func endSessions(userID: String) async throws(ShippyError) -> Int

    /// Stores a new password hash and revokes every login of the user, in one transaction.
    func changePassword(userID: String, passwordHash: String) async throws(ShippyError)
}
