import Foundation
import ShippyDomain

/// Where users and their password hashes are kept. Only the user service holds one.
public protocol UserRepository: Sendable {
    /// Stores a new user with the bcrypt hash of their password.
    /// - Throws: `ShippyError` `.alreadyExists` when the email is taken in any letter case, `.unavailable`.
    func create(_ user: User, passwordHash: String) async throws(ShippyError)

    /// The user with this id, or `nil`.
    func user(id: String) async throws(ShippyError) -> User?

    /// The user with this email (any letter case) and their password hash, or `nil`; for login only.
    func credentials(email: String) async throws(ShippyError) -> (user: User, passwordHash: String)?

    /// Every user, oldest first.
    func all() async throws(ShippyError) -> [User]
}

/// A `UserRepository` in memory, for unit tests only.
public actor InMemoryUserRepository: UserRepository {
    private var users: [(user: User, passwordHash: String)] = []

    public init() {}

    public func create(_ user: User, passwordHash: String) throws(ShippyError) {
        guard !users.contains(where: { $0.user.email.lowercased() == user.email.lowercased() }) else {
            throw .alreadyExists("a user with email \(user.email) already exists")
        }
        users.append((user, passwordHash))
    }

    public func user(id: String) -> User? {
        users.first { $0.user.id == id }?.user
    }

    public func credentials(email: String) -> (user: User, passwordHash: String)? {
        users.first { $0.user.email.lowercased() == email.lowercased() }
    }

    public func all() -> [User] {
        users.map(\.user)
    }
}
