import ShippyDomain

/// Who is calling: the claims of their verified token, and the token itself, which calls made on their behalf
/// forward. Bound once per call by the auth interceptor; never re-read from metadata downstream.
public struct Caller: Sendable {
    public var claims: AccessClaims
    /// The bearer token the claims were verified from.
    public var token: String

    public init(claims: AccessClaims, token: String) {
        self.claims = claims
        self.token = token
    }

    /// The user the caller is.
    public var userID: String { claims.userID }

    /// Where the caller's mail goes, as their token says.
    public var contact: Contact { Contact(email: claims.email, name: claims.name) }
}
