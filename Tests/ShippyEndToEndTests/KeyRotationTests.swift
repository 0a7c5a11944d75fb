import Foundation
import GRPCCore
import ShippyContracts
import ShippyDomain
import ShippyIdentity
import ShippyTestSupport
import Testing

/// Signing keys rotated with no restart of any verifier: the real user-service and vessel-service executables.
@Suite(.timeLimit(.minutes(2)), .dropsItsDatabases) struct KeyRotationTests {
    @Test func aSecondSigningKeyIsTrustedAtOnceAndTokensOfEitherKeyVerifyThroughout() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
            "shippy-rotation-\(UUID().uuidString)"
        ).path
        let publicKeys = "\(folder)/public/public.pem"
        let database = try await PostgresTestDatabase.create()
        func startUserService(key: String) throws -> ServiceProcess {
            try ServiceProcess.start(
                "user-service",
                environment: [
                    "POSTGRES_URL": database, "BCRYPT_COST": "4", "JWT_GENERATE_KEY": "true",
                    "JWT_PRIVATE_KEY_FILE": "\(folder)/private/\(key).pem", "JWT_PUBLIC_KEY_FILE": publicKeys,
                    "NATS_URL": try TestEnvironment.value("SHIPPY_NATS_URL"),
                    "NATS_CA": try TestEnvironment.value("SHIPPY_NATS_CA"),
                ])
        }
        let vessel = try ServiceProcess.start(
            "vessel-service",
            environment: [
                "MONGO_URL": try TestEnvironment.mongoURL(),
                "MONGO_DATABASE": TestEnvironment.uniqueDatabase("rotation"),
                "JWT_PUBLIC_KEY_FILE": publicKeys,
            ])
        let user = try startUserService(key: "first")
        var second: ServiceProcess?
        try await cleaningUp({
            await user.process.stop()
            await second?.process.stop()
            await vessel.process.stop()
        }) {
            try await user.waitUntilServing()
            try await vessel.waitUntilServing()

            func login(at replica: ServiceProcess) async throws -> String {
                try await replica.withClient { client in
                    try await User_UserService.Client(wrapping: client).auth(
                        .with {
                            $0.email = "ann@example.com"; $0.password = "ann's password"
                        }
                    ).token
                }
            }
            func validates(_ token: String, at replica: ServiceProcess) async throws -> Bool {
                try await replica.withClient { client in
                    try await User_UserService.Client(wrapping: client).validateToken(.with { $0.token = token }).valid
                }
            }
            func listFleet(_ token: String) async throws -> Int {
                try await vessel.withClient { client in
                    try await Vessel_VesselService.Client(wrapping: client).list(
                        Vessel_ListRequest(), metadata: ["authorization": "Bearer \(token)"]
                    ).vessels.count
                }
            }
            _ = try await user.withClient { client in
                try await User_UserService.Client(wrapping: client).create(
                    .with {
                        $0.name = "Ann"; $0.email = "ann@example.com"; $0.password = "ann's password"
                    })
            }
            let oldToken = try await login(at: user)
            #expect(try await listFleet(oldToken) == 5)

            // A replica with a second key joins, as in a rolling update; then the first one leaves.
            let next = try startUserService(key: "second")
            second = next
            try await next.waitUntilServing()
            let newToken = try await login(at: next)
            #expect(try await validates(newToken, at: user), "the first replica trusts the new key at once")
            #expect(try await validates(oldToken, at: next), "the new replica trusts the old key")
            user.process.signal(SIGTERM)
            #expect(await user.process.waitForExit() == 0)
            #expect(oldToken.split(separator: ".")[0] != newToken.split(separator: ".")[0], "a new kid")
            let pem = try String(contentsOfFile: publicKeys, encoding: .utf8)
            #expect(pem.components(separatedBy: "BEGIN PUBLIC KEY").count - 1 == 2, "the file holds both keys")

            #expect(try await listFleet(newToken) == 5, "a token of the new key verifies at once")
            #expect(try await listFleet(oldToken) == 5, "a token of the old key still verifies")
            // A file being rewritten badly does not lock anyone out: the keys already read stay. A token naming a
            // key nobody holds makes vessel-service read the file again (its answer waits for that read).
            try "not a key".write(toFile: publicKeys, atomically: true, encoding: .utf8)
            let stranger = try await TestKeys().signer().sign(TestKeys.user("Eve"), roles: [.user])
            await #expect(throws: RPCError.self) { try await listFleet(stranger) }
            #expect(
                await eventually(within: .seconds(10)) {
                    vessel.process.errorOutput.contains("the token key file could not be read again")
                }, "vessel-service read the bad file:\n\(vessel.process.errorOutput)")
            #expect(try await listFleet(newToken) == 5)
            #expect(try await listFleet(oldToken) == 5)
            #expect(try await validates(oldToken, at: next))
            #expect(try await validates(newToken, at: next))
            #expect(vessel.process.isRunning, "the verifier was never restarted")
        }
    }
}
