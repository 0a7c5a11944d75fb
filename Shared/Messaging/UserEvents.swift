import ShippyDomain

/// The JetStream stream of user events: user-service publishes to it, email-service consumes it.
public enum UserEvents {
    public static let stream = "USERS"
    public static let subjects = ["user.>"]
    /// The subject of `UserCreated`.
    public static let created = "user.created"
    /// The subject of `SignUpRepeated`.
    public static let signUpRepeated = "user.signup_repeated"
    /// What email-service consumes: every user event.
    public static let all = "user.>"
    /// How long JetStream drops a re-publication of the same event id.
    public static let duplicateWindow: Duration = .seconds(120)
    /// How long the stream keeps an event: as long as email-service remembers which events it mailed, so
    /// that a message old enough to be forgotten there is gone here too.
    public static let retention: Duration = .seconds(7 * 86_400)

    /// Connects and makes sure the stream exists (either side may start first); closes the connection
    /// when the stream cannot be made.
    /// - Throws: `ShippyError` `.unavailable`, `.invalidArgument` for a bad URL.
    public static func connect(_ endpoint: NATSEndpoint, name: String) async throws(ShippyError) -> NATSClient {
        let nats = try await NATSClient.connect(endpoint, name: name)
        do {
            try await nats.ensureStream(
                name: stream, subjects: subjects, duplicateWindow: duplicateWindow, maxAge: retention)
        } catch {
            await nats.close()
            throw error
        }
        return nats
    }
}
