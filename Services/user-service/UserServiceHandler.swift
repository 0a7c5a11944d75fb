import Foundation
import GRPCCore
import Logging
import Metrics
import ShippyContracts
import ShippyDomain
import ShippyIdentity
import ShippyMessaging
import ShippyRuntime
import ShippyStorage
import ShippyTelemetry

/// The transport of `user.UserService`. Passwords arrive here and go no further than the hasher; no
/// response, token or log line carries a password, a hash, or (outside `Auth`) a token.
struct UserServiceHandler: User_UserService.SimpleServiceProtocol {
    let repository: any UserRepository
    let hasher: PasswordHasher
    let signer: TokenSigner
    /// The signer's own key, then the keys of the shared key file (other replicas', rotated ones).
    let verifier: any TokenVerifying
    /// How long a new refresh token stays valid unused (the configuration may change it while the service runs).
    let refreshLifetime: @Sendable () -> Duration
    let throttle: LoginThrottle
    let logger: Logger

    /// Methods callable without a token.
    static let publicMethods: Set<MethodDescriptor> = [
        User_UserService.Method.Create.descriptor,
        User_UserService.Method.Auth.descriptor,
        User_UserService.Method.ValidateToken.descriptor,
        // The refresh token is their credential.
        User_UserService.Method.Refresh.descriptor,
        User_UserService.Method.Logout.descriptor,
    ]

    /// Signs a user up; the response holds the user with its new id, its roles and no password.
    ///
    /// An address that has an account already gets the same answer (a user with a new id, never stored) after
    /// the same work (the password is hashed either way), so that sign-up cannot be used to find who has an
    /// account; the owner is told by mail (`user.signup_repeated`) instead.
    /// - Throws: `invalidArgument` (name, company, email or password breaks a rule), `unavailable` (PostgreSQL
    ///   down, or too many sign-ups and logins at once).
    func create(request: User_User, context: ServerContext) async throws -> User_Response {
        let newUser = NewUser(
            name: request.name, company: request.company, email: request.email, password: request.password)
        try newUser.validate()
        let user = User(
            id: UUID().uuidString.lowercased(), name: newUser.name, company: newUser.company, email: newUser.email)
        let passwordHash = try await hasher.hash(newUser.password)
        do {
            try await repository.create(user, passwordHash: passwordHash, event: UserCreatedEvent.make(for: user))
            Self.signUps.increment()
            logger.info("user created", metadata: ["user_id": "\(user.id)"])
        } catch let error as ShippyError where error.code == .alreadyExists {
            guard let owner = try await repository.credentials(email: user.email)?.user else { throw error }
            try await repository.record(SignUpRepeatedEvent.make(for: owner))
            Self.repeatedSignUps.increment()
            logger.info(
                "sign-up with an address that has an account: its owner is told by mail",
                metadata: ["user_id": "\(owner.id)"])
        }
        return .with { $0.user = User_User(user) }
    }

    /// The user with `request.id`: your own (an empty id is the caller's), or anyone's for an admin.
    /// - Throws: `unauthenticated`, `permissionDenied` (another user's id, asked before looking, so the answer
    ///   tells nothing of who exists), `notFound`, `unavailable`.
    func get(request: User_User, context: ServerContext) async throws -> User_Response {
        let claims = try AuthInterceptor.requireClaims()
        let id = request.id.isEmpty ? claims.userID : request.id
        try claims.requireOwnerOrAdmin(id, of: "user \(id.prefix(64))")
        guard let user = try await repository.user(id: id) else {
            throw ShippyError.notFound("no user with id \(id.prefix(64))")
        }
        return .with { $0.user = User_User(user) }
    }

    /// Every user, oldest first, a page at a time. Admins only.
    /// - Throws: `unauthenticated`, `permissionDenied`, `invalidArgument` (page_size or page_token), `unavailable`.
    func getAll(request: User_Request, context: ServerContext) async throws -> User_Response {
        try AuthInterceptor.requireClaims().requireAdmin(to: "list users")
        let page = try await repository.users(
            page: try PageRequest(pageSize: request.pageSize, pageToken: request.pageToken))
        return .with {
            $0.users = page.items.map { User_User($0) }
            $0.nextPageToken = page.nextToken
        }
    }

    /// Logs in: a signed token, with the user's roles, for the right email and password.
    /// - Throws: `invalidArgument` (email or password missing), `unauthenticated` (the same message and
    ///   about the same time for a wrong password and an unknown email), `resourceExhausted` (too many failed
    ///   logins for this email from this address: the message says when to retry), `unavailable` (PostgreSQL
    ///   down, or too many sign-ups and logins at once: retry in a moment).
    func auth(request: User_User, context: ServerContext) async throws -> User_Token {
        let typed = request.email.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !typed.isEmpty, !request.password.isEmpty else {
            throw ShippyError.invalidArgument("email and password are required")
        }
        guard typed.utf8.count <= EmailAddress.maximumBytes else {
            throw ShippyError.invalidArgument("email is longer than \(EmailAddress.maximumBytes) bytes")
        }
        guard request.password.unicodeScalars.count <= NewUser.maximumPasswordLength else {
            throw ShippyError.invalidArgument("password is longer than \(NewUser.maximumPasswordLength) characters")
        }
        // Every spelling of an address is its canonical form; one that has none names no account (and is checked
        // against the decoy hash like an unknown one, so the answer and its time are the same).
        let email = try? EmailAddress.canonical(typed)
        let throttleKey = LoginThrottle.key(email: email ?? typed, client: ClientAddress.of(context))
        do {
            try throttle.check(throttleKey)
        } catch {
            Self.logins(.throttled).increment()
            throw error
        }
        guard let user = try await passwordOwner(email: email, password: request.password, throttleKey: throttleKey)
        else {
            Self.logins(.refused).increment()
            logger.info("login refused")
            throw ShippyError(.unauthenticated, "wrong email or password")
        }
        Self.logins(.ok).increment()
        logger.info("login", metadata: ["user_id": "\(user.id)"])
        let refresh = RefreshToken.generate()
        let refreshExpiry = Date().addingTimeInterval(TimeInterval(refreshLifetime().components.seconds))
        try await repository.startSession(userID: user.id, tokenHash: refresh.hash, expiresAt: refreshExpiry)
        return try await tokens(for: user, refresh: refresh, refreshExpiry: refreshExpiry)
    }

    /// The user whose password `password` is, recorded by the login throttle under `throttleKey`; `nil` for a wrong
    /// password, an unknown address or one of another user than `userID`. Each case is checked against a hash (the
    /// decoy when there is none), so the answer takes as long whichever it is.
    private func passwordOwner(
        email: String?, password: String, throttleKey: String, userID: String? = nil
    ) async throws -> User? {
        var credentials: (user: User, passwordHash: String)?
        if let email { credentials = try await repository.credentials(email: email) }
        if let userID, credentials?.user.id != userID { credentials = nil }
        guard try await hasher.verify(password, hash: credentials?.passwordHash),
            let user = credentials?.user
        else {
            throttle.recordFailure(throttleKey)
            return nil
        }
        throttle.recordSuccess(throttleKey)
        return user
    }

    /// An access token for `user` with its roles, beside the refresh token that gets the next one.
    private func tokens(for user: User, refresh: RefreshToken, refreshExpiry: Date) async throws -> User_Token {
        let signed = try await signer.signed(user, roles: user.roles)
        return .with {
            $0.token = signed.token; $0.valid = true
            $0.expiresAtUnix = Int64(signed.claims.exp.value.timeIntervalSince1970)
            $0.refreshToken = refresh.text
            $0.refreshExpiresAtUnix = Int64(refreshExpiry.timeIntervalSince1970)
        }
    }

    /// A new access token, with the user's roles as stored now, and a new refresh token; the one presented is
    /// spent. Presenting a spent one again revokes the whole login (a copy is in someone else's hands).
    /// - Throws: `invalidArgument` (no refresh token), `unauthenticated` (invalid, expired, revoked or reused:
    ///   log in again), `unavailable`.
    func refresh(request: User_Token, context: ServerContext) async throws -> User_Token {
        guard !request.refreshToken.isEmpty else { throw ShippyError.invalidArgument("refresh_token is required") }
        let invalid = ShippyError(
            .unauthenticated, "the refresh token is not valid (expired, revoked or never issued): log in again")
        guard let presented = RefreshToken(presented: request.refreshToken) else { throw invalid }
        let next = RefreshToken.generate()
        let expiry = Date().addingTimeInterval(TimeInterval(refreshLifetime().components.seconds))
        switch try await repository.rotateSession(tokenHash: presented.hash, to: next.hash, expiresAt: expiry) {
        case .rotated(let user):
            Self.refreshes(.ok).increment()
            return try await tokens(for: user, refresh: next, refreshExpiry: expiry)
        case .invalid:
            Self.refreshes(.invalid).increment()
            throw invalid
        case .reused:
            Self.refreshes(.reused).increment()
            logger.warning("a spent refresh token was presented again: its login is revoked")
            throw ShippyError(
                .unauthenticated, "the refresh token was used before: this login is revoked; log in again")
        }
    }

    /// Revokes the login of the refresh token presented. The same answer whether or not it was live, so that
    /// logging out twice is no error and the answer tells nothing.
    /// - Throws: `invalidArgument` (no refresh token), `unavailable`.
    func logout(request: User_Token, context: ServerContext) async throws -> User_Token {
        guard !request.refreshToken.isEmpty else { throw ShippyError.invalidArgument("refresh_token is required") }
        // Only the form is checked here: whether it was live, the answer does not say.
        guard let presented = RefreshToken(presented: request.refreshToken) else {
            throw ShippyError.invalidArgument(
                "refresh_token is not a refresh token (at most \(RefreshToken.maximumLength) characters)")
        }
        if try await repository.endSession(tokenHash: presented.hash) { logger.info("logged out") }
        return .with { $0.valid = false }
    }

    /// Revokes every login of a user: `request.id`, else the user with `request.email`, else the caller. Tokens
    /// already issued stay valid until they expire (`token.lifetime`), as verifiers never call this service.
    /// - Throws: `unauthenticated`, `permissionDenied` (another user, not an admin), `notFound`, `unavailable`.
    func revokeSessions(request: User_User, context: ServerContext) async throws -> User_Response {
        let claims = try AuthInterceptor.requireClaims()
        let user: User?
        if !request.id.isEmpty {
            try claims.requireOwnerOrAdmin(request.id, of: "user \(request.id.prefix(64))")
            user = try await repository.user(id: request.id)
        } else if !request.email.isEmpty {
            let email = try EmailAddress.canonical(request.email)
            guard email == claims.email.lowercased() || claims.isAdmin else {
                throw ShippyError.permissionDenied("user \(email) is another user")
            }
            user = try await repository.credentials(email: email)?.user
        } else {
            user = try await repository.user(id: claims.userID)
        }
        guard let user else { throw ShippyError.notFound("no such user") }
        let ended = try await repository.endSessions(userID: user.id)
        logger.notice(
            "sessions revoked", metadata: ["actor": "\(claims.userID)", "user_id": "\(user.id)", "logins": "\(ended)"])
        return .with { $0.user = User_User(user) }
    }

    /// Changes the caller's password, given the current one, and revokes every login of theirs.
    /// - Throws: `unauthenticated` (no token, or the current password is wrong), `invalidArgument` (the new one
    ///   breaks a rule), `resourceExhausted` (too many wrong passwords), `unavailable`.
    func changePassword(request: User_PasswordChange, context: ServerContext) async throws -> User_Response {
        let claims = try AuthInterceptor.requireClaims()
        try NewUser.validate(password: request.newPassword, field: "new_password")
        let email = claims.email.lowercased()
        let throttleKey = LoginThrottle.key(email: email, client: ClientAddress.of(context))
        try throttle.check(throttleKey)
        guard
            let user = try await passwordOwner(
                email: email, password: request.password, throttleKey: throttleKey, userID: claims.userID)
        else {
            throw ShippyError(.unauthenticated, "the current password is wrong")
        }
        try await repository.changePassword(userID: user.id, passwordHash: try await hasher.hash(request.newPassword))
        logger.notice("password changed; every login revoked", metadata: ["user_id": "\(user.id)"])
        return .with { $0.user = User_User(user) }
    }

    /// `valid = true` for a token this service signed that has not expired.
    /// - Throws: `unauthenticated` with the reason (malformed, bad signature, expired, wrong issuer or audience).
    func validateToken(request: User_Token, context: ServerContext) async throws -> User_Token {
        _ = try await verifier.verify(request.token)
        return .with { $0.valid = true }
    }

    /// Grants or revokes `admin` for the user with `request.email`, recorded in the audit trail and logged. The
    /// caller's role is checked as stored, not only in the token. An admin cannot revoke their own role, so that
    /// an admin is always left to grant it again.
    /// - Throws: `unauthenticated`, `permissionDenied` (not an admin, or revoking your own role),
    ///   `invalidArgument` (a role other than admin), `notFound` (no user with that email), `unavailable`.
    func setRole(request: User_RoleChange, context: ServerContext) async throws -> User_Response {
        let claims = try AuthInterceptor.requireClaims()
        try claims.requireAdmin(to: "grant or revoke roles")
        // The role as stored, not only as the token says: an admin revoked minutes ago holds a token that still
        // says admin, and must not grant it back.
        guard try await repository.user(id: claims.userID)?.roles.contains(.admin) == true else {
            throw ShippyError.permissionDenied("only an admin may grant or revoke roles (yours was revoked)")
        }
        guard let role = Role(rawValue: request.role), role == .admin else {
            throw ShippyError.invalidArgument("role \"\(request.role.prefix(20))\" cannot be granted; only \"admin\"")
        }
        let email = try EmailAddress.canonical(request.email)
        if !request.granted, email == claims.email.lowercased() {
            throw ShippyError.permissionDenied("an admin cannot revoke their own role; ask another admin")
        }
        let change = RoleChange(role: role, granted: request.granted, email: email, actor: claims.userID)
        guard let user = try await repository.change(change) else {
            throw ShippyError.notFound("no user with email \(email)")
        }
        Self.audit(change, of: user, logger: logger)
        return .with { $0.user = User_User(user) }
    }

    /// The audit event of a role change: one log line at notice level (who, whom, what; the time is the line's).
    static func audit(_ change: RoleChange, of user: User, logger: Logger) {
        logger.notice(
            change.granted ? "role granted" : "role revoked",
            metadata: ["actor": "\(change.actor)", "user_id": "\(user.id)", "role": "\(change.role.rawValue)"])
    }
}

/// The `user.created` event: the user's public details, never a password or hash.
enum UserCreatedEvent {
    static func make(for user: User, at date: Date = Date()) throws -> OutboxEvent {
        try .new(UserEvents.created) { eventID in
            try Shippy_Events_UserCreated.with {
                $0.eventID = eventID
                $0.userID = user.id
                $0.name = user.name
                $0.email = user.email
                $0.company = user.company
                $0.createdAtUnixMs = Int64(date.timeIntervalSince1970 * 1000)
            }.serializedBytes()
        }
    }
}

/// The `user.signup_repeated` event: the existing user's id, name and address, for the mail that tells them.
enum SignUpRepeatedEvent {
    static func make(for owner: User, at date: Date = Date()) throws -> OutboxEvent {
        try .new(UserEvents.signUpRepeated) { eventID in
            try Shippy_Events_SignUpRepeated.with {
                $0.eventID = eventID
                $0.userID = owner.id
                $0.name = owner.name
                $0.email = owner.email
                $0.attemptedAtUnixMs = Int64(date.timeIntervalSince1970 * 1000)
            }.serializedBytes()
        }
    }
}

extension User_User {
    /// The wire form of a user: never with a password.
    init(_ user: User) {
        self.init()
        id = user.id
        name = user.name
        company = user.company
        email = user.email
        roles = user.roles.map(\.rawValue)
    }
}

extension UserServiceHandler {
    /// `shippy_signups_total`: users created.
    static let signUps = Counter(label: "shippy_signups_total")
    /// `shippy_signups_repeated_total`: sign-ups with an address that has an account (answered as if created).
    static let repeatedSignUps = Counter(label: "shippy_signups_repeated_total")

    /// How a login ended: a token, a wrong email or password, or refused unseen after too many failures.
    enum LoginOutcome: String { case ok, refused, throttled }

    /// `shippy_logins_total{outcome}`.
    static func logins(_ outcome: LoginOutcome) -> Counter {
        Counter(label: "shippy_logins_total", dimensions: [("outcome", outcome.rawValue)])
    }

    /// How a refresh ended: new tokens, a token not valid, or a spent one presented again (its login revoked).
    enum RefreshOutcome: String { case ok, invalid, reused }

    /// `shippy_refreshes_total{outcome}`.
    static func refreshes(_ outcome: RefreshOutcome) -> Counter {
        Counter(label: "shippy_refreshes_total", dimensions: [("outcome", outcome.rawValue)])
    }
}
