import Foundation
import JWTKit
import ShippyDomain
import ShippyIdentity
import ShippyRuntime
import ShippyTestSupport
import Testing

/// The design card's main flow, through the real executables over real sockets, against the real servers:
/// `user-cli` → token → `consignment-cli consignment.json TOKEN`.
@Suite(.timeLimit(.minutes(3)), .dropsItsDatabases) struct EndToEndTests {
    let keys = FileManager.default.temporaryDirectory.appendingPathComponent("shippy-e2e-\(UUID().uuidString)").path
    let sample = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("consignment.json").path

    func run(_ tool: String, _ arguments: [String], environment: [String: String] = [:]) async throws -> ToolRun {
        try await runTool(tool, arguments, environment: environment)
    }

    func startVessel(database: String, port: Int? = nil) throws -> ServiceProcess {
        try ServiceProcess.start(
            "vessel-service",
            environment: [
                "MONGO_URL": try TestEnvironment.mongoURL(), "MONGO_DATABASE": database,
                "JWT_PUBLIC_KEY_FILE": "\(keys)/public.pem",
            ], port: port)
    }

    /// user-service creating the development key that the other services verify with.
    func startUser() async throws -> ServiceProcess {
        try ServiceProcess.start(
            "user-service",
            environment: [
                "POSTGRES_URL": try await PostgresTestDatabase.create(), "BCRYPT_COST": "4", "JWT_GENERATE_KEY": "true",
                "JWT_PRIVATE_KEY_FILE": "\(keys)/signing.pem", "JWT_PUBLIC_KEY_FILE": "\(keys)/public.pem",
            ])
    }

    func startConsignment(
        database: String, vessel: ServiceProcess, extra: [String: String] = [:]
    ) throws -> ServiceProcess {
        try ServiceProcess.start(
            "consignment-service",
            environment: [
                "MONGO_URL": try TestEnvironment.mongoURL(), "MONGO_DATABASE": database,
                "JWT_PUBLIC_KEY_FILE": "\(keys)/public.pem", "VESSEL_SERVICE_ADDRESS": "127.0.0.1:\(vessel.port)",
            ].merging(extra) { $1 })
    }

    @Test func newUsersShipConsignmentsAndSeeOnlyTheirOwn() async throws {
        let database = TestEnvironment.uniqueDatabase("e2e")
        var vessel = try startVessel(database: database)
        let user = try await startUser()
        let consignment = try startConsignment(database: database, vessel: vessel, extra: ["VESSEL_TIMEOUT": "2"])
        try await cleaningUp({
            for service in [vessel, user, consignment] { await service.process.stop() }
        }) {
            for service in [vessel, user, consignment] { try await service.waitUntilServing() }
            let userAddress = ["USER_SERVICE_ADDRESS": "127.0.0.1:\(user.port)"]
            let shipping = ["CONSIGNMENT_SERVICE_ADDRESS": "127.0.0.1:\(consignment.port)"]

            // A new user signs up: user-cli prints the user, then the token.
            let ann = try await run(
                "user-cli",
                [
                    "--name", "Ann Example", "--email", "ann@example.com", "--company", "Acme", "--password",
                    "ann-password",
                ],
                environment: userAddress)
            #expect(ann.status == 0, "\(ann.error)")
            let annToken = try #require(
                ann.output.split(separator: "\n").last?.split(separator: " ").last.map(String.init))

            // consignment-cli consignment.json TOKEN: created on a vessel, then listed.
            let shipped = try await run("consignment-cli", [sample, annToken], environment: shipping)
            #expect(shipped.status == 0, "\(shipped.error)")
            let lines = shipped.output.split(separator: "\n").map(String.init)
            let consignmentID = try #require(lines.first?.replacingOccurrences(of: "Created consignment ", with: ""))
            #expect(lines.contains("  vessel:      vessel003"))
            #expect(lines.contains("  weight:      55000 kg"))
            #expect(lines.contains("Your consignments (1):"))
            #expect(lines.last?.hasPrefix("  \(consignmentID)  booked  vessel vessel003") == true)

            // A second user, logging in with `user-cli login`, sees only their own.
            let bob = try await run(
                "user-cli", ["--name", "Bob", "--email", "bob@example.com", "--password", "bob-password"],
                environment: userAddress)
            #expect(bob.status == 0)
            let bobLogin = try await run(
                "user-cli", ["login", "--email", "bob@example.com"],
                environment: userAddress.merging(["SHIPPY_PASSWORD": "bob-password"]) { $1 })
            let bobToken = bobLogin.output.trimmingCharacters(in: .whitespacesAndNewlines)
            let bobShips = try await run(
                "consignment-cli", ["--json", sample], environment: shipping.merging(["SHIPPY_TOKEN": bobToken]) { $1 })
            #expect(bobShips.status == 0, "\(bobShips.error)")
            let bobReport = try #require(
                try JSONSerialization.jsonObject(with: Data(bobShips.output.utf8)) as? [String: Any])
            let bobsList = try #require(bobReport["consignments"] as? [[String: Any]])
            #expect(bobsList.count == 1)
            #expect(!bobShips.output.contains(consignmentID))

            // One consignment: its owner's to see and to cancel; to another user it does not exist.
            let got = try await run("consignment-cli", ["get", consignmentID, annToken], environment: shipping)
            #expect(got.status == 0 && got.output.contains("  status:      booked"), "\(got.output)\(got.error)")
            let hidden = try await run("consignment-cli", ["get", consignmentID, bobToken], environment: shipping)
            #expect(hidden.status == 65, "\(hidden.error)")
            #expect(hidden.error == "consignment-cli: no consignment \(consignmentID) of yours\n", "\(hidden.error)")
            let fleet = ["VESSEL_SERVICE_ADDRESS": "127.0.0.1:\(vessel.port)"]
            func vessel003() async throws -> String {
                let listed = try await run("vessel-cli", ["list", annToken], environment: fleet)
                return listed.output.split(separator: "\n").first { $0.contains("vessel003") }.map(String.init) ?? ""
            }
            #expect(try await vessel003().contains("9/12 containers  25000/80000 kg"))
            for _ in 0..<2 {
                let cancelled = try await run(
                    "consignment-cli", ["cancel", consignmentID, annToken], environment: shipping)
                #expect(cancelled.status == 0, "\(cancelled.error)")
                #expect(cancelled.output.hasPrefix("Cancelled consignment \(consignmentID)\n"), "\(cancelled.output)")
                #expect(cancelled.output.contains("  status:      cancelled"), "\(cancelled.output)")
                // The room comes back once, whoever repeats the cancel.
                #expect(try await vessel003().contains("12/12 containers  80000/80000 kg"))
            }
            let bobCancels = try await run(
                "consignment-cli", ["cancel", consignmentID, bobToken], environment: shipping)
            #expect(bobCancels.status == 65 && bobCancels.error.contains("no consignment"), "\(bobCancels.error)")

            // Bad tokens: a clear error and exit 77, and every service keeps serving.
            let signingKey = try ES256PrivateKey(pem: String(contentsOfFile: "\(keys)/signing.pem", encoding: .utf8))
            let annAsUser = User(id: "a", name: "Ann", company: "", email: "ann@example.com")
            let expired = try await TokenSigner(
                privateKey: signingKey, issuer: "shippy-user-service", audience: "shippy", lifetime: .seconds(60)
            ).sign(annAsUser, now: Date().addingTimeInterval(-86_400))
            let foreign = try await TokenSigner(
                privateKey: ES256PrivateKey(), issuer: "shippy-user-service", audience: "shippy",
                lifetime: .seconds(600)
            ).sign(annAsUser)
            var generator = SeededGenerator(seed: 7)
            let random = String(
                (0..<80).map { _ in "abcdefghijklmnopqrstuvwxyzABCDEF0123456789-_.".randomElement(using: &generator)! })
            for (token, reason) in [
                ("111", "malformed"), ("111.111.111", "malformed"), (random, "invalid token"),
                (expired, "expired"), (foreign, "not signed by a known key"),
            ] {
                let refused = try await run("consignment-cli", [sample, token], environment: shipping)
                #expect(refused.status == 77, "\(token.prefix(20)): \(refused.error)")
                #expect(
                    refused.error.hasPrefix("consignment-cli: invalid token: ") && refused.error.contains(reason),
                    "\(refused.error)")
            }
            for service in [vessel, user, consignment] { #expect(await service.isServing()) }

            // vessel-service stopped: consignment-cli fails within its deadline, naming the vessel service.
            vessel.process.signal(SIGTERM)
            #expect(await vessel.process.waitForExit() == 0)
            let down = try await run("consignment-cli", [sample, annToken, "--timeout", "8"], environment: shipping)
            #expect(down.status == 69)
            // The dependency is named, its address is not: that is the operator's to know, not the client's.
            #expect(down.error.contains("vessel-service"), "\(down.error)")
            #expect(!down.error.contains(":\(vessel.port)"), "\(down.error)")

            // Started again on its port: the next call succeeds, nothing else restarted.
            vessel = try startVessel(database: database, port: vessel.port)
            try await vessel.waitUntilServing()
            let again = try await run("consignment-cli", [sample, annToken], environment: shipping)
            #expect(again.status == 0, "\(again.error)")
            #expect(again.output.contains("Your consignments (2):"))
            #expect(consignment.process.isRunning && user.process.isRunning)
        }
    }

    /// A CLI login kept in a file: the other CLIs need no token, refresh it when it is about to expire, a copy
    /// used after its refresh ends the login, and `user-cli logout` revokes it at user-service.
    @Test func theKeptLoginIsRefreshedByTheCLIsAndEndsWhenCopiedOrLoggedOut() async throws {
        let database = TestEnvironment.uniqueDatabase("e2e")
        let vessel = try startVessel(database: database)
        let user = try await startUser()
        let consignment = try startConsignment(database: database, vessel: vessel)
        let sessionFile = "\(keys)/session/kept.json"
        try await cleaningUp({
            for service in [vessel, user, consignment] { await service.process.stop() }
        }) {
            for service in [vessel, user, consignment] { try await service.waitUntilServing() }
            let environment = [
                "USER_SERVICE_ADDRESS": "127.0.0.1:\(user.port)",
                "CONSIGNMENT_SERVICE_ADDRESS": "127.0.0.1:\(consignment.port)", "SHIPPY_SESSION_FILE": sessionFile,
                "VESSEL_SERVICE_ADDRESS": "127.0.0.1:\(vessel.port)",
                "SHIPPY_PASSWORD": "kim's password",
            ]
            let signUp = try await run(
                "user-cli", ["--name", "Kim", "--email", "kim@example.com"], environment: environment)
            #expect(signUp.status == 0, "\(signUp.error)")
            let permissions = try FileManager.default.attributesOfItem(atPath: sessionFile)[.posixPermissions] as? Int
            #expect(permissions == 0o600, "the kept login is its owner's only")

            let shipped = try await run("consignment-cli", [sample], environment: environment)
            #expect(shipped.status == 0, "no token given: the kept login's \(shipped.error)")

            // The kept token about to expire: the CLI refreshes it first, and keeps the new pair.
            func kept() throws -> [String: Any] {
                try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: sessionFile)))
                    as? [String: Any] ?? [:]
            }
            func keep(_ session: [String: Any]) throws {
                try JSONSerialization.data(withJSONObject: session).write(to: URL(fileURLWithPath: sessionFile))
            }
            var expiring = try kept()
            expiring["expiresAt"] = 0
            try keep(expiring)
            let listed = try await run("vessel-cli", ["list"], environment: environment)
            #expect(listed.status == 0 && listed.output.contains("vessel003"), "\(listed.output) \(listed.error)")
            let refreshed = try kept()
            #expect(refreshed["refreshToken"] as? String != expiring["refreshToken"] as? String, "rotated")

            // A copy of the spent refresh token (a stolen file) is refused, and ends the login for both holders.
            try keep(expiring)
            let stolen = try await run("vessel-cli", ["list"], environment: environment)
            #expect(stolen.status == 77 && stolen.error.contains("log in again"), "\(stolen.error)")
            var holder = refreshed
            holder["expiresAt"] = 0
            try keep(holder)
            let owner = try await run("vessel-cli", ["list"], environment: environment)
            #expect(owner.status == 77, "the owner's copy is revoked too: \(owner.error)")

            // A fresh login, then logout: revoked at user-service, forgotten here.
            #expect(
                try await run("user-cli", ["login", "--email", "kim@example.com"], environment: environment).status == 0
            )
            let loggedIn = try kept()
            let logout = try await run("user-cli", ["logout"], environment: environment)
            #expect(logout.status == 0 && logout.output.contains("Logged out."), "\(logout.error)")
            #expect(!FileManager.default.fileExists(atPath: sessionFile))
            let none = try await run("vessel-cli", ["list"], environment: environment)
            #expect(none.status == 64 && none.error.contains("no token"), "\(none.error)")
            var revoked = loggedIn
            revoked["expiresAt"] = 0
            try FileManager.default.createDirectory(
                atPath: "\(keys)/session", withIntermediateDirectories: true)
            try keep(revoked)
            let afterLogout = try await run("vessel-cli", ["list"], environment: environment)
            #expect(afterLogout.status == 77, "a logged-out login cannot be refreshed: \(afterLogout.error)")
        }
    }

    /// The roles in a token, read from its payload as any client could.
    func roles(in token: String) throws -> [String] {
        let payload = try #require(Data(base64URL: token.split(separator: ".")[1]))
        return try #require(try JSONSerialization.jsonObject(with: payload) as? [String: Any])["roles"] as? [String]
            ?? []
    }

    /// The first admin by the operator's command, then a grant and a revocation by that admin through user-cli,
    /// each reaching the other user's tokens at their next refresh; a sign-up never yields a role.
    @Test func theOperatorMakesTheFirstAdminWhoGrantsAndRevokesAndRefreshesCarryTheChange() async throws {
        let database = TestEnvironment.uniqueDatabase("e2e")
        let vessel = try startVessel(database: database)
        let user = try await startUser()
        try await cleaningUp({
            for service in [vessel, user] { await service.process.stop() }
        }) {
            for service in [vessel, user] { try await service.waitUntilServing() }
            func environment(_ name: String) -> [String: String] {
                [
                    "USER_SERVICE_ADDRESS": "127.0.0.1:\(user.port)",
                    "VESSEL_SERVICE_ADDRESS": "127.0.0.1:\(vessel.port)",
                    "SHIPPY_SESSION_FILE": "\(keys)/sessions/\(name).json", "SHIPPY_PASSWORD": "\(name)'s password",
                ]
            }
            func keptToken(_ name: String) throws -> String {
                let data = try Data(contentsOf: URL(fileURLWithPath: "\(keys)/sessions/\(name).json"))
                return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])["token"] as? String
                    ?? ""
            }
            /// Makes the kept token due, then lets vessel-cli refresh it.
            func refresh(_ name: String) async throws {
                let path = "\(keys)/sessions/\(name).json"
                var session = try #require(
                    try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path)))
                        as? [String: Any])
                session["expiresAt"] = 0
                try JSONSerialization.data(withJSONObject: session).write(to: URL(fileURLWithPath: path))
                let listed = try await run("vessel-cli", ["list"], environment: environment(name))
                #expect(listed.status == 0, "\(listed.error)")
            }
            for name in ["ada", "bob"] {
                let signUp = try await run(
                    "user-cli", ["--name", name, "--email", "\(name)@example.com"], environment: environment(name))
                #expect(signUp.status == 0, "\(signUp.error)")
                #expect(try roles(in: try keptToken(name)) == ["user"], "no sign-up yields a role")
            }
            let notYet = try await run("user-cli", ["grant-admin", "bob@example.com"], environment: environment("ada"))
            #expect(notYet.status == 77 && notYet.error.contains("only an admin"), "\(notYet.error)")

            #expect(try await user.command(["grant-admin", "ADA@example.com"]).contains("is now an admin"))
            try await refresh("ada")
            #expect(try roles(in: try keptToken("ada")) == ["admin"], "the operator's grant, at the next refresh")

            // Registering a vessel is an admin's: refused to bob, done for ada, and listed at once.
            let northernStar = ["create", "--name", "Northern Star", "--capacity", "40", "--max-weight", "300000"]
            let refused = try await run("vessel-cli", northernStar, environment: environment("bob"))
            #expect(refused.status == 77 && refused.error.contains("admin"), "\(refused.error)")
            let registered = try await run("vessel-cli", northernStar, environment: environment("ada"))
            #expect(registered.status == 0, "\(registered.error)")
            #expect(registered.output.contains("Northern Star, 40 containers, 300000 kg"), "\(registered.output)")
            let fleet = try await run("vessel-cli", ["list"], environment: environment("ada"))
            #expect(
                fleet.output.contains("Northern Star") && fleet.output.contains("Fleet (6 vessels)"), "\(fleet.output)")

            let granted = try await run(
                "user-cli", ["grant-admin", "bob@example.com"], environment: environment("ada"))
            #expect(granted.status == 0 && granted.output.contains("roles admin"), "\(granted.error)")
            try await refresh("bob")
            #expect(try roles(in: try keptToken("bob")) == ["admin"])
            let revoked = try await run(
                "user-cli", ["revoke-admin", "bob@example.com"], environment: environment("ada"))
            #expect(revoked.status == 0 && revoked.output.contains("roles user"), "\(revoked.error)")
            try await refresh("bob")
            #expect(try roles(in: try keptToken("bob")) == ["user"], "revoked: the next refresh has none")
            let ownRole = try await run(
                "user-cli", ["revoke-admin", "ada@example.com"], environment: environment("ada"))
            #expect(ownRole.status == 77 && ownRole.error.contains("cannot revoke their own role"), "\(ownRole.error)")

            // A second sign-up with the admin's address (any spelling) is answered as new and yields nothing.
            let twin = try await run(
                "user-cli", ["--name", "Twin", "--email", "Ada@Example.com", "--no-save"],
                environment: environment("twin"))
            #expect(twin.status == 77 && twin.output.hasPrefix("Created user "), "\(twin.error)")
        }
    }
}
