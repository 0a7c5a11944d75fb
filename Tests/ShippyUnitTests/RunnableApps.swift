import JWTKit
import ShippyConfiguration
import ShippyMessaging
import ShippyRuntime
import ShippyTestSupport

@testable import ConsignmentService
@testable import UserService
@testable import VesselService

extension VesselServiceApp: RunnableApp {}
extension ConsignmentServiceApp: RunnableApp {}
extension UserServiceApp: RunnableApp {}

extension UserServiceConfiguration {
    /// The user service's settings for the in-memory wiring: a signing key of the test's, cheap bcrypt.
    static func inMemory(
        _ server: ServerConfiguration, key: ES256PrivateKey = ES256PrivateKey()
    ) -> UserServiceConfiguration {
        UserServiceConfiguration(
            server: server, postgresURL: "unused",
            signingKey: SigningKeyConfiguration(
                privateKeyPEM: key.pemRepresentation, privateKeyFile: nil, generateKey: false, publicKeyFile: nil),
            tokens: TokenConfiguration(issuer: "shippy-user-service", audience: "shippy"),
            tokenLifetime: LiveSetting(.seconds(3600)), refreshLifetime: LiveSetting(.seconds(86_400)), bcryptCost: 4,
            bcryptQueue: LiveSetting(64), bcryptMaximumWait: LiveSetting(.seconds(10)),
            loginFreeFailures: LiveSetting(3), loginMaximumDelay: LiveSetting(.seconds(30)),
            nats: .init(url: "unused"))
    }
}
