import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import ShippyContracts
import ShippyRuntime
import ShippyTestSupport
import Testing

/// The real `user-service` and `user-cli` executables against the real PostgreSQL.
@Suite(.timeLimit(.minutes(2)), .dropsItsDatabases) struct UserServiceBlackBoxTests {
    let keys = FileManager.default.temporaryDirectory.appendingPathComponent("shippy-keys-\(UUID().uuidString)").path

    func startService(postgresURL: String, extra: [String: String] = [:]) throws -> ServiceProcess {
        try ServiceProcess.start(
            "user-service",
            environment: [
                "POSTGRES_URL": postgresURL,
                "JWT_PRIVATE_KEY_FILE": "\(keys)/signing.pem",
                "JWT_GENERATE_KEY": "true",
                "JWT_PUBLIC_KEY_FILE": "\(keys)/public.pem",
                "BCRYPT_COST": "4",
            ].merging(extra) { $1 }
        )
    }

    /// Runs `user-cli` to completion; returns its status, stdout and stderr.
    func userCLI(
        _ arguments: [String], service: ServiceProcess, environment: [String: String] = [:]
    ) async throws
        -> (status: Int32?, output: String, error: String)
    {
        let cli = try ChildProcess(
            try TestEnvironment.executable("user-cli"),
            arguments: arguments,
            environment: environment.merging(["USER_SERVICE_ADDRESS": "127.0.0.1:\(service.port)"]) { $1 }
        )
        let status = await cli.waitForExit(timeout: .seconds(30))
        await cli.stop()
        return (status, cli.output, cli.errorOutput)
    }

    @Test func userCLICreatesAUserAndPrintsATokenThatValidates() async throws {
        let service = try startService(postgresURL: try await PostgresTestDatabase.create())
        try await cleaningUp({
            await service.process.stop()
        }) {
            try await service.waitUntilServing()
            let password = "tr0ub4dor&3-horse"

            let created = try await userCLI(
                [
                    "--name", "Ewan Valentine", "--email", "ewan@example.com", "--company", "BBC", "--password",
                    password,
                ],
                service: service)
            #expect(created.status == 0, "\(created.error)")
            let lines = created.output.split(separator: "\n")
            #expect(
                lines.first?.hasPrefix("Created user ") == true
                    && lines.first?.contains("<ewan@example.com>, BBC") == true)
            let token = try #require(lines.last.map { String($0.dropFirst("Token: ".count)) })

            let valid = try await service.withClient { client in
                try await User_UserService.Client(wrapping: client).validateToken(.with { $0.token = token }).valid
            }
            #expect(valid)

            let login = try await userCLI(
                ["login", "--email", "EWAN@example.com"], service: service, environment: ["SHIPPY_PASSWORD": password])
            #expect(
                login.status == 0 && login.output.split(separator: "\n").count == 1 && login.output.hasPrefix("eyJ"))

            // A taken address: "created" as any other (no one learns it is taken), but the twin's password is not
            // the account's, so the log-in that follows is refused.
            let duplicate = try await userCLI(
                ["--name", "Twin", "--email", "Ewan@Example.com", "--password", "the twin's password"], service: service
            )
            #expect(duplicate.status == 77 && duplicate.output.hasPrefix("Created user "), "\(duplicate.error)")
            #expect(!duplicate.output.contains(lines.first.map { String($0.split(separator: ":")[0]) } ?? "-"))

            let wrong = try await userCLI(
                ["login", "--email", "ewan@example.com", "--password", "not-the-password"], service: service)
            #expect(wrong.status == 77 && wrong.error == "user-cli: wrong email or password\n")

            let invalid = try await userCLI(
                ["--name", "X", "--email", "nope", "--password", password], service: service)
            #expect(invalid.status == 65 && invalid.error.contains("must hold exactly one @"), "\(invalid.error)")

            service.process.signal(SIGTERM)
            #expect(await service.process.waitForExit() == 0)
            let log = service.process.errorOutput
            #expect(log.contains("user created"))
            for secret in [password, "not-the-password", token, "$2b$"] {
                #expect(!log.contains(secret), "log leaks \(secret)")
            }
        }
    }

    @Test func userCLIExplainsAServiceThatIsDown() async throws {
        let port = try freePort()
        let cli = try ChildProcess(
            try TestEnvironment.executable("user-cli"),
            arguments: [
                "login", "--email", "a@b.example", "--password", "whatever1", "--address", "127.0.0.1:\(port)",
                "--timeout", "3",
            ])
        let status = await cli.waitForExit(timeout: .seconds(20))
        await cli.stop()
        #expect(status == 69)
        #expect(cli.errorOutput.hasPrefix("user-cli: user-service at 127.0.0.1:\(port) is unavailable"))
    }

    @Test func malformedTokensAreUnauthenticatedAndTheServiceKeepsServing() async throws {
        let service = try startService(postgresURL: try await PostgresTestDatabase.create())
        try await cleaningUp({
            await service.process.stop()
        }) {
            try await service.waitUntilServing()
            var generator = SeededGenerator(seed: 42)
            let random = (0..<50).map { _ in
                String((0..<64).map { _ in Character(UnicodeScalar(UInt8.random(in: 33...126, using: &generator))) })
            }
            let tokens = ["", "abc", "111", "111.111.111", "a.b.c", String(repeating: ".", count: 10_000)] + random
            let codes = try await service.withClient { client in
                let users = User_UserService.Client(wrapping: client)
                var codes: Set<String> = []
                for token in tokens {
                    do {
                        _ = try await users.validateToken(.with { $0.token = token })
                        codes.insert("ok")
                    } catch let error as RPCError { codes.insert("\(error.code)") }
                    do {
                        _ = try await users.getAll(User_Request(), metadata: ["authorization": "Bearer \(token)"])
                        codes.insert("ok")
                    } catch let error as RPCError { codes.insert("\(error.code)") }
                }
                return codes
            }
            #expect(codes == ["unauthenticated"])
            #expect(await service.isServing())
        }
    }

    @Test func startedTenSecondsBeforePostgreSQLItRecoversWithoutARestart() async throws {
        let port = try freePort()
        let postgres = try PostgresServer(port: port)
        defer { postgres.destroy() }
        let service = try startService(postgresURL: postgres.url, extra: ["STARTUP_TIMEOUT": "60"])
        try await cleaningUp({
            await service.process.stop()
        }) {
            let started = ContinuousClock.now
            #expect(
                await eventually(within: .seconds(10)) {
                    if case .notServing = await service.health() { true } else { false }
                })
            try await Task.sleep(until: started + .seconds(10))
            guard case .notServing = await service.health() else {
                Issue.record("expected NOT_SERVING while PostgreSQL is down")
                return
            }
            #expect(service.process.isRunning)
            // Calls before the database is there are told to retry, not failed with an internal error.
            await expectStatus(.unavailable, "the service is starting") {
                _ = try await service.withClient { client in
                    try await User_UserService.Client(wrapping: client).create(
                        .with {
                            $0.name = "Early"; $0.email = "early@example.com"; $0.password = "eager-password"
                        })
                }
            }

            try postgres.start()
            let recovered = await eventually(within: .seconds(15)) { await service.isServing() }
            #expect(recovered, "never SERVING after PostgreSQL started; log:\n\(service.process.errorOutput)")
            let created = try await service.withClient { client in
                try await User_UserService.Client(wrapping: client).create(
                    .with {
                        $0.name = "Late"; $0.email = "late@example.com"; $0.password = "patient-password"
                    })
            }
            #expect(!created.user.id.isEmpty)
            service.process.signal(SIGTERM)
            #expect(await service.process.waitForExit() == 0)
        }
    }

    @Test func missingSigningKeyIsOneClearLine() async throws {
        let process = try ChildProcess(
            try TestEnvironment.executable("user-service"),
            environment: [
                "POSTGRES_URL": "postgres://u:secret@127.0.0.1:1/db", "PORT": "\(try freePort())", "PLAINTEXT": "true",
            ])
        let status = await process.waitForExit()
        await process.stop()
        #expect(status == 1)
        #expect(process.errorOutput.split(separator: "\n").count == 1)
        #expect(process.errorOutput.contains("invalid configuration: JWT_PRIVATE_KEY_FILE"))
        #expect(!process.errorOutput.contains("secret"))
    }
}
