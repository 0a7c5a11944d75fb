import ShippyConfiguration
import ShippyMongo
import ShippyRuntime
import Testing

@Suite struct ConfigurationTests {
    @Test func defaultsApplyWhenNothingIsSet() throws {
        let configuration = try ServerOptions.parse([]).resolve(
            defaultPort: 50052, ConfigurationReader(environment: [:]))
        #expect(configuration.host == "127.0.0.1")
        #expect(configuration.port == 50052)
        #expect(configuration.logLevel == .info)
        #expect(configuration.logFormat == .text)
        #expect(configuration.startupTimeout == .seconds(60))
        #expect(configuration.shutdownGrace == .seconds(10))
    }

    @Test func flagOverridesEnvironment() throws {
        var options = try ServerOptions.parse(["--port", "6000", "--log-format", "json"])
        options.startupTimeout = "0.5"
        let reader = ConfigurationReader(environment: ["PORT": "5000", "LOG_FORMAT": "text", "HOST": "0.0.0.0"])
        let configuration = try options.resolve(defaultPort: 1, reader)
        #expect(configuration.port == 6000)
        #expect(configuration.logFormat == .json)
        #expect(configuration.host == "0.0.0.0")
        #expect(configuration.startupTimeout == .milliseconds(500))
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
            try ServerOptions.parse([]).resolve(defaultPort: 1, ConfigurationReader(environment: environment))
        } throws: { error in
            "\(error)".hasPrefix(expected)
        }
    }

    @Test func secretValuesAreNeverEchoed() {
        let reader = ConfigurationReader(environment: ["DATABASE_PASSWORD": "   "])
        #expect {
            try reader.string("DATABASE_PASSWORD")
        } throws: { error in
            "\(error)" == "invalid configuration: DATABASE_PASSWORD: must not be empty"
        }
        #expect {
            try reader.string("JWT_PRIVATE_KEY")
        } throws: { error in
            "\(error)" == "invalid configuration: JWT_PRIVATE_KEY: is required and has no default"
        }
    }

    @Test func mongoDefaults() throws {
        let mongo = try MongoOptions.parse([]).resolve(ConfigurationReader(environment: ["MONGO_THREADS": "8"]))
        #expect(mongo.url == "mongodb://127.0.0.1:27017")
        #expect(mongo.database == "shippy")
        #expect(mongo.threads == 8)
    }

    @Test(arguments: ["127.0.0.1", "localhost:", ":50052", "host:0", "host:x", "dns:///:1"])
    func malformedAddressIsRejected(address: String) {
        #expect(throws: ConfigurationError.self) { try ServiceAddress.target(address, key: "VESSEL_SERVICE_ADDRESS") }
    }

    @Test(arguments: ["127.0.0.1:50052", "vessel:50052", "dns:///vessel:50052", "[::1]:50052"])
    func wellFormedAddressIsAccepted(address: String) throws {
        _ = try ServiceAddress.target(address, key: "VESSEL_SERVICE_ADDRESS")
    }
}
