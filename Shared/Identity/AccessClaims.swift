import Foundation
import JWTKit
import ShippyDomain

/// The claims of a Shippy access token: who the user is, who issued the token, for whom, and until when.
/// Never a password or a hash.
public struct AccessClaims: JWTPayload, Equatable {
    public var sub: SubjectClaim
    public var email: String
    public var name: String
    public var company: String
    public var iat: IssuedAtClaim
    public var exp: ExpirationClaim
    public var iss: IssuerClaim
    public var aud: AudienceClaim
    /// What the holder may do (`admin`, `user`); tokens signed before roles existed carry none: a plain user.
    public var roles: [String]?

    /// - Parameter issuedAt: rounded down to whole seconds, as JWT NumericDates are usually written.
    public init(user: User, roles: [Role], issuedAt: Date, lifetime: Duration, issuer: String, audience: String) {
        let issuedAt = Date(timeIntervalSince1970: issuedAt.timeIntervalSince1970.rounded(.down))
        sub = SubjectClaim(value: user.id)
        email = user.email
        name = user.name
        company = user.company
        iat = IssuedAtClaim(value: issuedAt)
        exp = ExpirationClaim(value: issuedAt.addingTimeInterval(TimeInterval(lifetime.components.seconds)))
        iss = IssuerClaim(value: issuer)
        aud = AudienceClaim(value: [audience])
        self.roles = roles.map(\.rawValue)
    }

    /// The user the token speaks for.
    public var userID: String { sub.value }

    public var isAdmin: Bool { roles?.contains(Role.admin.rawValue) == true }

    /// - Throws: `ShippyError` `.permissionDenied` naming `action` unless the holder is an admin.
    public func requireAdmin(to action: String) throws(ShippyError) {
        guard isAdmin else { throw .permissionDenied("only an admin may \(action)") }
    }

    /// - Throws: `ShippyError` `.permissionDenied` unless the holder is `ownerID` or an admin.
    public func requireOwnerOrAdmin(_ ownerID: String, of thing: String) throws(ShippyError) {
        guard userID == ownerID || isAdmin else { throw .permissionDenied("\(thing) belongs to another user") }
    }

    /// jwt-kit calls this after the signature checks out; issuer and audience are checked by `TokenVerifier`.
    public func verify(using algorithm: some JWTAlgorithm) async throws {
        try exp.verifyNotExpired()
    }
}
