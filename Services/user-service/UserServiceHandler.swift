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
    let throttle: LoginThrottle
    let logger: Logger

    /// Methods callable without a token.
    static let publicMethods: Set<MethodDescriptor> = [
        User_UserService.Method.Create.descriptor,
        User_UserService.Method.Auth.descriptor,
        User_UserService.Method.ValidateToken.descriptor,
    ]

    /// Signs a user up; the response holds the user with its new id, its roles and no password.
    /// - Throws: `invalidArgument` (name, company, email or password breaks a rule), `alreadyExists` (email
    ///   taken in any letter case), `unavailable` (PostgreSQL down, or too many sign-ups and logins at once).
    func create(request: User_User, context: ServerContext) async throws -> User_Response {
        let newUser = NewUser(
            name: request.name, company: request.company, email: request.email, password: request.password)
        try newUser.validate()
        let user = User(
            id: UUID().uuidString.lowercased(), name: newUser.name, company: newUser.company, email: newUser.email)
        try await repository.create(
            user, passwordHash: try await hasher.hash(newUser.password), event: UserCreatedEvent.make(for: user))
        Self.signUps.increment()
        logger.info("user created", metadata: ["user_id": "\(user.id)"])
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
        // Every spelling of an address is its canonical form; one that has none names no account (and is checked
        // against the decoy hash like an unknown one, so the answer and its time are the same).
        let email = try? EmailAddress.canonical(typed)
        let throttleKey = LoginThrottle.key(email: email ?? typed, peer: context.remotePeer)
        do {
            try throttle.check(throttleKey)
        } catch {
            Self.logins(.throttled).increment()
            throw error
        }
        var credentials: (user: User, passwordHash: String)?
        if let email { credentials = try await repository.credentials(email: email) }
        // Longer passwords were never accepted at sign-up; bcrypt would compare only their first 72 bytes.
        let tooLong = request.password.utf8.count > NewUser.maximumPasswordBytes
        let matches = try await hasher.verify(request.password, hash: tooLong ? nil : credentials?.passwordHash)
        guard matches, let user = credentials?.user else {
            throttle.recordFailure(throttleKey)
            Self.logins(.refused).increment()
            logger.info("login refused")
            throw ShippyError(.unauthenticated, "wrong email or password")
        }
        throttle.recordSuccess(throttleKey)
        Self.logins(.ok).increment()
        logger.info("login", metadata: ["user_id": "\(user.id)"])
        let signed = try await signer.signed(user, roles: user.roles)
        return .with {
            $0.token = signed.token; $0.valid = true
            $0.expiresAtUnix = Int64(signed.claims.exp.value.timeIntervalSince1970)
        }
    }

    /// `valid = true` for a token this service signed that has not expired.
    /// - Throws: `unauthenticated` with the reason (malformed, bad signature, expired, wrong issuer or audience).
    func validateToken(request: User_Token, context: ServerContext) async throws -> User_Token {
        _ = try await verifier.verify(request.token)
        return .with { $0.valid = true }
    }

    /// Grants or revokes `admin` for the user with `request.email`, recorded in the audit trail and logged. An
    /// admin cannot revoke their own role, so that an admin is always left to grant it again.
    /// - Throws: `unauthenticated`, `permissionDenied` (not an admin, or revoking your own role),
    ///   `invalidArgument` (a role other than admin), `notFound` (no user with that email), `unavailable`.
    func setRole(request: User_RoleChange, context: ServerContext) async throws -> User_Response {
        let claims = try AuthInterceptor.requireClaims()
        try claims.requireAdmin(to: "grant or revoke roles")
        guard let role = Role(rawValue: request.role), role == .admin else {
            throw ShippyError.invalidArgument("role \"\(request.role.prefix(20))\" cannot be granted; only \"admin\"")
        }
        if !request.granted, (try? EmailAddress.canonical(request.email)) == claims.email.lowercased() {
            throw ShippyError.permissionDenied("an admin cannot revoke their own role; ask another admin")
        }
        let email = try EmailAddress.canonical(request.email)
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
        let id = UUID()
        let event = Shippy_Events_UserCreated.with {
            $0.eventID = id.uuidString.lowercased()
            $0.userID = user.id
            $0.name = user.name
            $0.email = user.email
            $0.company = user.company
            $0.createdAtUnixMs = Int64(date.timeIntervalSince1970 * 1000)
        }
        return OutboxEvent(
            id: id, subject: UserEvents.created, payload: try event.serializedBytes(),
            traceContext: currentTraceHeaders())
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

    /// How a login ended: a token, a wrong email or password, or refused unseen after too many failures.
    enum LoginOutcome: String { case ok, refused, throttled }

    /// `shippy_logins_total{outcome}`.
    static func logins(_ outcome: LoginOutcome) -> Counter {
        Counter(label: "shippy_logins_total", dimensions: [("outcome", outcome.rawValue)])
    }
}
