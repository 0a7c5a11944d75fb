import Crypto
import Foundation

/// An opaque refresh token: 32 random bytes, base64url. The user service keeps only its SHA-256 (`hash`), so
/// that a copy of the database holds no usable token; the token itself goes to the client once.
public struct RefreshToken: Sendable, Hashable {
    public let text: String

    /// Longer texts were never issued; refused before any hashing. In Unicode code points, as the OpenAPI
    /// document's `maxLength` counts (an issued token is 43 ASCII characters).
    public static let maximumLength = 64

    /// A new token from the system's secure random source.
    public static func generate() -> RefreshToken {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let text = Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        return RefreshToken(text: text)
    }

    /// A token as a client presents it; `nil` for an empty or over-long text (never issued).
    public init?(presented text: String) {
        guard !text.isEmpty, text.unicodeScalars.count <= Self.maximumLength else { return nil }
        self.text = text
    }

    private init(text: String) { self.text = text }

    /// What the store keeps and looks up.
    public var hash: [UInt8] { Array(SHA256.hash(data: Data(text.utf8))) }
}
