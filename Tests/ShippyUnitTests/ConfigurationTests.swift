import Foundation
import Logging
import ShippyCLI
import ShippyConfiguration
import ShippyDiscovery
import ShippyMongo
import ShippyRuntime
import ShippyTestSupport
import Testing

@testable import ConsignmentService
@testable import EmailService
@testable import UserService
@testable import VesselService

@Suite struct ConfigurationTests {
    @Test func defaultsApplyWhenNothingIsSet() throws {
        let configuration = try ServerConfiguration(
            Settings.environment(["PLAINTEXT": "true"]), defaultPort: 50052, defaultMetricsPort: 9052)
        #expect(configuration.host == "127.0.0.1")
        #expect(configuration.port == 50052)
        #expect(configuration.metricsPort == 9052)
        #expect(configuration.logLevel.value == .info)
        #expect(configuration.logFormat == .text)
        #expect(configuration.startupTimeout == .seconds(60))
        #expect(configuration.shutdownGrace == .seconds(10))
    }

    @Test func aFlagWinsOverTheEnvironmentWhichWinsOverTheFile() async throws {
        try await withConfigFile(
            name: "settings.json",
            #"{"port": 7000, "log": {"format": "json"}, "startup": {"timeout": 0.5}, "host": "10.0.0.1"}"#
        ) { path in
            let settings = try await Settings.load(
                arguments: ["--port", "6000"],
                environment: [
                    "CONFIG_FILE": path, "PORT": "5000", "HOST": "0.0.0.0", "PLAINTEXT": "true",
                ])
            let configuration = try ServerConfiguration(settings, defaultPort: 1, defaultMetricsPort: 2)
            #expect(configuration.port == 6000)
            #expect(configuration.host == "0.0.0.0")
            #expect(configuration.logFormat == .json)
            #expect(configuration.startupTimeout == .milliseconds(500))
        }
    }

    @Test func aYAMLFileIsReadToo() async throws {
        try await withConfigFile(name: "settings.yaml", "log:\n  level: debug\nmongo:\n  threads: 8\n") { path in
            let settings = try await Settings.load(environment: ["CONFIG_FILE": path, "PLAINTEXT": "true"])
            #expect(try ServerConfiguration(settings, defaultPort: 1, defaultMetricsPort: 2).logLevel.value == .debug)
            #expect(try MongoConfiguration(settings).threads == 8)
        }
    }

    @Test(arguments: [
        (["PORT": "abc"], "invalid configuration: PORT (--port): \"abc\" is not an integer from 0 to 65535"),
        (["PORT": "70000"], "invalid configuration: PORT (--port): \"70000\" is not an integer from 0 to 65535"),
        (["LOG_LEVEL": "loud"], "invalid configuration: LOG_LEVEL (--log-level): \"loud\" is not one of trace"),
        (["STARTUP_TIMEOUT": "-1"], "invalid configuration: STARTUP_TIMEOUT (--startup-timeout): \"-1\" is not"),
        (["HOST": " "], "invalid configuration: HOST (--host): must not be empty"),
    ])
    func badValueNamesItsKey(environment: [String: String], expected: String) {
        #expect {
            try ServerConfiguration(Settings.environment(environment), defaultPort: 1, defaultMetricsPort: 2)
        } throws: { error in
            "\(error)".hasPrefix(expected)
        }
    }

    @Test func aBadValueInTheFileIsNeverReplacedByTheDefault() async throws {
        try await withConfigFile(name: "settings.json", #"{"port": "fifty", "log": {"level": 3}}"#) { path in
            let settings = try await Settings.load(environment: ["CONFIG_FILE": path])
            #expect {
                try settings.value(ServerSettings.port(default: 1))
            } throws: { error in
                "\(error)" == "invalid configuration: PORT (--port): \"fifty\" is not an integer from 0 to 65535"
            }
            #expect(throws: ConfigurationError.self) { try settings.value(ServerSettings.logLevel) }
        }
    }

    @Test func anUnreadableFileIsOneLineNamingIt() async throws {
        try await withConfigFile(name: "broken.json", #"{"port": "#) { path in
            await #expect {
                try await Settings.load(environment: ["CONFIG_FILE": path])
            } throws: { error in
                "\(error)".hasPrefix("invalid configuration: CONFIG_FILE (--config-file): \"\(path)\" cannot be read")
            }
        }
    }

    @Test func secretValuesAreNeverEchoedAndHaveNoFlag() {
        let password = Setting.text("database.password", secret: true, "a password")
        #expect(password.flagName == nil)
        #expect {
            try Settings.environment(["DATABASE_PASSWORD": "   "]).value(password)
        } throws: { error in
            "\(error)" == "invalid configuration: DATABASE_PASSWORD: must not be empty"
        }
        #expect {
            try Settings.environment([:]).value(password)
        } throws: { error in
            "\(error)" == "invalid configuration: DATABASE_PASSWORD: is required and has no default"
        }
        let secretPin = Setting<Int>("pin", default: 0, secret: true, "a secret number") {
            _ throws(SettingProblem) in throw .isNot("a number from 0 to 9999")
        }
        #expect {
            try Settings.environment(["PIN": "12345"]).value(secretPin)
        } throws: { error in
            !"\(error)".contains("12345")
        }
        #expect(secretPin.logged(1234) == "<redacted>")
    }

    @Test func eachKeyGivesItsEnvironmentVariableAndFlag() {
        let setting = Setting.seconds("vessel.timeout", default: .seconds(5), in: 0.1...300, "")
        #expect(setting.environmentName == "VESSEL_TIMEOUT")
        #expect(setting.flagName == "vessel-timeout")
    }

    @Test func mongoSettings() throws {
        let mongo = try MongoConfiguration(Settings.environment(["MONGO_THREADS": "8"]))
        #expect(mongo.url == "mongodb://127.0.0.1:27017")
        #expect(mongo.database == "shippy")
        #expect(mongo.threads == 8)
    }

    @Test(
        arguments: [
            (["--port", "1"], nil),
            (["--port=1", "--log-level", "debug"], nil),
            (["--bogus", "1"], "unknown option --bogus; see --help for the settings"),
            (["--mongo-url", "mongodb://x"], "unknown option --mongo-url; see --help for the settings"),
            (["--port"], "--port needs a value"),
            (["--port", "--host", "x"], "--port needs a value"),
            (["stray"], "unexpected argument \"stray\"; settings are given as --setting value"),
        ] as [([String], String?)])
    func flagsAreChecked(arguments: [String], problem: String?) throws {
        var flags = SettingFlags()
        flags.values = arguments
        let known = ServerSettings.all(defaultPort: 1, defaultMetricsPort: 2) + MongoSettings.all
        if let problem {
            #expect {
                try flags.check(known)
            } throws: { error in
                "\(error)" == problem
            }
        } else {
            try flags.check(known)
        }
    }

    @Test func aReloadingSettingFollowsTheFileAndKeepsItsValueWhenTheFileIsWrong() async throws {
        try await withConfigFile(name: "live.json", #"{"vessel": {"timeout": 20}}"#) { path in
            let logs = LogCapture()
            let settings = try await Settings.load(environment: ["CONFIG_FILE": path])
            let timeout = Setting.seconds("vessel.timeout", default: .seconds(5), in: 0.1...300, reloads: true, "")
            let live = try settings.live(timeout)
            #expect(live.value == .seconds(20))
            let group = ServiceRunner.makeGroup(
                settings.services(logger: logs.logger()), shutdownGrace: .seconds(1), logger: logs.logger())
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                try #"{"vessel": {"timeout": 0.5}}"#.write(toFile: path, atomically: true, encoding: .utf8)
                #expect(await eventually(within: .seconds(3)) { live.value == .milliseconds(500) })
                #expect(logs.all.contains { $0.contains("setting changed") && $0.contains(#""to":"0.5""#) })

                try #"{"vessel": {"timeout": "soon"}}"#.write(toFile: path, atomically: true, encoding: .utf8)
                #expect(
                    await eventually(within: .seconds(3)) {
                        logs.all.contains { $0.contains("setting not changed") && $0.contains("soon") }
                    })
                #expect(live.value == .milliseconds(500), "the previous value stays")
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
        }
    }

    /// The table of docs/configuration.md is the one copy of the settings outside the code: every setting of every service is
    /// in it, with its key, variable and flag, and marked "yes" exactly when it reloads.
    @Test func theConfigurationPageListsEverySettingAsTheServicesDeclareIt() throws {
        let page = try String(
            contentsOf: URL(filePath: #filePath).deletingLastPathComponent().appending(
                path: "../../docs/configuration.md"),
            encoding: .utf8)
        let settings =
            VesselServiceCommand.settings + ConsignmentServiceCommand.settings + UserServiceCommand.settings
            + EmailServiceCommand.settings
        for setting in settings {
            let flag = setting.flagName.map { "`--\($0)`" } ?? "—"
            let row = "| `\(setting.key)` | `\(setting.environmentName)` | \(flag) |"
            let line = page.split(separator: "\n").first { $0.hasPrefix(row) }
            #expect(line != nil, "docs/configuration.md has no row \(row)")
            if let line, !setting.key.hasSuffix("public.key.file") {
                let reloads =
                    line.split(separator: "|", omittingEmptySubsequences: false).map {
                        $0.trimmingCharacters(in: .whitespaces)
                    }[5] == "yes"
                #expect(reloads == setting.reloads, "\(setting.key): the reloads column of docs/configuration.md")
            }
        }
    }

    /// A key that several executables read is one declaration: the same help, secrecy and reloading wherever it is
    /// set (only a service's own port defaults differ).
    @Test func aKeyReadBySeveralExecutablesIsDeclaredOnce() {
        let settings =
            VesselServiceCommand.settings + ConsignmentServiceCommand.settings + UserServiceCommand.settings
            + EmailServiceCommand.settings
            + [
                SharedSettings.userServiceAddress, SharedSettings.consignmentServiceAddress,
                SharedSettings.vesselServiceAddress, CLISettings.token, CLISettings.password,
            ]
        let byKey = Dictionary(grouping: settings, by: \.key)
        for (key, declarations) in byKey {
            let first = declarations[0]
            for other in declarations.dropFirst() {
                #expect(other.summary == first.summary, "\(key): two help texts")
                #expect(other.isSecret == first.isSecret && other.reloads == first.reloads, "\(key): two declarations")
            }
        }
        #expect(byKey["nats.url"]?.count == 3, "user-, consignment- and email-service read the one nats.url")
    }

    @Test(arguments: ["127.0.0.1", "localhost:", ":50052", "host:0", "host:x", "dns:///:1"])
    func malformedAddressIsRejected(address: String) {
        #expect(throws: ConfigurationError.self) { try ServiceAddress.target(address, key: "VESSEL_SERVICE_ADDRESS") }
    }

    @Test(arguments: ["127.0.0.1:50052", "vessel:50052", "dns:///vessel:50052", "[::1]:50052"])
    func wellFormedAddressIsAccepted(address: String) throws {
        _ = try ServiceAddress.target(address, key: "VESSEL_SERVICE_ADDRESS")
    }

    /// Runs `body` with the path of a new file holding `text`, in a folder removed afterwards.
    private func withConfigFile(
        name: String, _ text: String, _ body: (String) async throws -> Void
    ) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("shippy-config-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        try await body(path)
    }
}
