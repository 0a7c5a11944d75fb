import ShippyDomain

/// The JetStream stream of user events: user-service publishes to it, email-service consumes it.
public enum UserEvents {
    public static let jetStream = EventStream(name: stream, subjects: ["user.>"])
    public static let stream = "USERS"
    /// The subject of `UserCreated`.
    public static let created = "user.created"
    /// The subject of `SignUpRepeated`.
    public static let signUpRepeated = "user.signup_repeated"
    /// What email-service consumes: every user event.
    public static let all = "user.>"
    /// How long the stream keeps an event.
    public static let retention = jetStream.retention

    /// Connects and makes sure the stream exists; see `EventStream.connect`.
    public static func connect(_ endpoint: NATSEndpoint, name: String) async throws(ShippyError) -> NATSClient {
        try await jetStream.connect(endpoint, name: name)
    }
}
