import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import ShippyContracts
import ShippyRuntime
import ShippyTestSupport
import Synchronization
import Testing

/// The real `vessel-service` executable over real sockets, against the real MongoDB-compatible server.
@Suite(.timeLimit(.minutes(2)), .dropsItsDatabases) struct VesselServiceBlackBoxTests {
    let keys: TestKeys

    init() throws {
        keys = try TestKeys()
    }

    func startService(mongoURL: String? = nil, extra: [String: String] = [:]) throws -> ServiceProcess {
        try ServiceProcess.start(
            "vessel-service",
            environment: [
                "MONGO_URL": try mongoURL ?? TestEnvironment.mongoURL(),
                "MONGO_DATABASE": TestEnvironment.uniqueDatabase("blackbox"),
                "JWT_PUBLIC_KEY_FILE": keys.publicKeyFile,
            ].merging(extra) { $1 }
        )
    }

    @Test func servesOverARealSocketAndExitsZeroOnSIGTERM() async throws {
        let service = try startService()
        try await service.waitUntilServing()
        let admin = try await keys.bearer(TestKeys.user("Admin"), roles: [.admin])
        let (found, created) = try await service.withClient { client in
            let vessels = Vessel_VesselService.Client(wrapping: client)
            let found = try await vessels.findAvailable(
                .with {
                    $0.capacity = 3; $0.maxWeight = 55_000
                })
            let created = try await vessels.create(
                .with {
                    $0.name = "Blackbird"; $0.capacity = 1; $0.maxWeight = 1
                }, metadata: admin)
            return (found.vessel, created)
        }
        #expect(found.id == "vessel003")
        #expect(created.created && !created.vessel.id.isEmpty)

        service.process.signal(SIGTERM)
        #expect(await service.process.waitForExit() == 0)
        #expect(service.process.errorOutput.contains("stopped"))
    }

    @Test func notServingUntilMongoAppearsThenServingWithinTwoSeconds() async throws {
        let mongoPort = try freePort()
        let service = try startService(mongoURL: "mongodb://127.0.0.1:\(mongoPort)")
        try await cleaningUp({
            await service.process.stop()
        }) {
            // Without its database the service runs, answers health, and says NOT_SERVING.
            #expect(
                await eventually(within: .seconds(10)) {
                    if case .notServing = await service.health() { true } else { false }
                })
            // It stays so: never SERVING while MongoDB is down (a probe that times out on a loaded machine is not
            // a contradiction; it is printed).
            for _ in 0..<5 {
                try await Task.sleep(for: .milliseconds(300))
                let outcome = await service.health()
                if case .serving = outcome {
                    Issue.record("SERVING while MongoDB is down")
                    return
                } else if case .failed = outcome {
                    print("a health probe while MongoDB is down: \(outcome)")
                }
            }
            #expect(service.process.isRunning)
            #expect(service.process.errorOutput.contains("waiting for dependency"))

            let mongo = try MongoServer(port: mongoPort)
            try await cleaningUp({
                await mongo.process.stop()
            }) {
                try await mongo.waitUntilListening()
                let appeared = ContinuousClock.now
                #expect(
                    await eventually(within: .seconds(2)) { await service.isServing() },
                    "SERVING did not come within 2 s of MongoDB appearing; log:\n\(service.process.errorOutput)")
                print("vessel-service turned SERVING \(ContinuousClock.now - appeared) after MongoDB appeared")

                service.process.signal(SIGTERM)
                #expect(await service.process.waitForExit() == 0)
                await mongo.process.stop()
            }
        }
    }

    @Test func aMongoDBThatStopsAnsweringTurnsIntoUnavailableWithinSecondsAndThePoolRecovers() async throws {
        let mongo = try MongoServer(port: try freePort())
        try await cleaningUp({
            kill(mongo.process.pid, SIGCONT)
            await mongo.process.stop()
        }) {
            try await mongo.waitUntilListening()
            let service = try startService(mongoURL: mongo.url, extra: ["MONGO_TIMEOUT": "1", "MONGO_THREADS": "2"])
            try await cleaningUp({
                await service.process.stop()
            }) {
                try await service.waitUntilServing()

                // Frozen, not gone: connections stay open and nothing answers, as with a hung server or a partition.
                kill(mongo.process.pid, SIGSTOP)
                let started = ContinuousClock.now
                let outcomes = try await service.withClient { client in
                    let vessels = Vessel_VesselService.Client(wrapping: client)
                    return await withTaskGroup(of: String.self) { group in
                        for _ in 0..<6 {  // more calls than the pool has threads
                            group.addTask {
                                var options = CallOptions.defaults
                                options.timeout = .seconds(60)
                                do {
                                    _ = try await vessels.findAvailable(.with { $0.capacity = 1 }, options: options)
                                    return "ok"
                                } catch let error as RPCError {
                                    return "\(error.code)"
                                } catch {
                                    return "\(error)"
                                }
                            }
                        }
                        return await group.reduce(into: [String]()) { $0.append($1) }
                    }
                }
                let elapsed = ContinuousClock.now - started
                kill(mongo.process.pid, SIGCONT)
                print("6 calls while MongoDB was frozen: \(outcomes) after \(elapsed)")
                #expect(outcomes.allSatisfy { $0 == "unavailable" }, "\(outcomes)")
                // Bounded by MONGO_TIMEOUT, not libmongoc's 5 minutes: the suite's 2-minute limit would catch that.
                let recovered = await eventually(within: .seconds(15)) {
                    (try? await service.withClient { client in
                        try await Vessel_VesselService.Client(wrapping: client).findAvailable(.with { $0.capacity = 1 })
                    }) != nil
                }
                #expect(recovered, "the pool's threads were not left blocked")
            }
        }
    }

    @Test func givesUpAfterTheStartupDeadlineWithAClearMessage() async throws {
        let mongoPort = try freePort()
        let service = try startService(
            mongoURL: "mongodb://app:hunter2@127.0.0.1:\(mongoPort)", extra: ["STARTUP_TIMEOUT": "1.5"])
        let status = await service.process.waitForExit(timeout: .seconds(20))
        await service.process.stop()
        #expect(status == 1)
        let log = service.process.errorOutput
        #expect(log.contains("gave up waiting for MongoDB at mongodb://***@127.0.0.1:\(mongoPort) after 1.5 s"))
        #expect(!log.contains("hunter2"), "the MongoDB password leaked into the log")
    }

    @Test(arguments: [
        ("PORT", "not-a-port"), ("LOG_LEVEL", "shouty"), ("MONGO_THREADS", "0"), ("STARTUP_TIMEOUT", "soon"),
        ("MONGO_TIMEOUT", "0"), ("RESERVATION_LIFETIME", "forever"), ("JWT_PUBLIC_KEY_FILE", ""),
    ])
    func badConfigurationExitsWithOneLineNamingTheKey(key: String, value: String) async throws {
        var environment = [
            "MONGO_URL": "mongodb://127.0.0.1:1", "JWT_PUBLIC_KEY_FILE": keys.publicKeyFile, "PLAINTEXT": "true",
        ]
        environment[key] = value
        if key != "PORT" { environment["PORT"] = "\(try freePort())" }
        let process = try ChildProcess(try TestEnvironment.executable("vessel-service"), environment: environment)
        let status = await process.waitForExit()
        await process.stop()
        #expect(status == 1)
        let lines = process.errorOutput.split(separator: "\n")
        #expect(lines.count == 1, "expected one line, got: \(process.errorOutput)")
        #expect(lines.first?.contains("invalid configuration: \(key)") == true)
    }

    /// Plaintext is a choice said out loud: with neither a certificate nor `PLAINTEXT=true` a service does not
    /// start, and with both it does not either; each is one line naming what to set.
    @Test func withoutTLSAServiceStartsOnlyWhenToldToRunInPlaintext() async throws {
        let base = ["MONGO_URL": "mongodb://127.0.0.1:1", "JWT_PUBLIC_KEY_FILE": keys.publicKeyFile]
        let identity = try TestAuthority().issue("vessel-service").environment
        for (extra, expected) in [
            ([:], "invalid configuration: TLS_CERTIFICATE (--tls-certificate): is not set"),
            (["PLAINTEXT": "false"], "unless PLAINTEXT=true says to run unencrypted"),
            (identity.merging(["PLAINTEXT": "true"]) { $1 }, "invalid configuration: PLAINTEXT (--plaintext): is true"),
        ] {
            let environment = base.merging(extra) { $1 }.merging(["PORT": "\(try freePort())"]) { $1 }
            let process = try ChildProcess(try TestEnvironment.executable("vessel-service"), environment: environment)
            let status = await process.waitForExit()
            await process.stop()
            #expect(status == 1)
            let lines = process.errorOutput.split(separator: "\n")
            #expect(lines.count == 1 && lines[0].contains(expected), "\(extra.keys.sorted()): \(process.errorOutput)")
        }
    }

    @Test func malformedRequestBytesGetAStatusCodeAndTheServiceKeepsServing() async throws {
        let service = try startService()
        try await cleaningUp({
            await service.process.stop()
        }) {
            try await service.waitUntilServing()

            var payloads: [[UInt8]] = [
                [0x0a],  // field 1, length-delimited, truncated before its length
                [0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f],  // a length far past the end
                [0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],  // an 11-byte varint
                [0x12, 0x03, 0x61, 0x62, 0x63],  // capacity (field 2, a varint) sent as a string
                [0x22, 0x02, 0x08],  // name (field 4, a string) holding truncated bytes
                [0x22, 0x02, 0xc3, 0x28],  // name holding invalid UTF-8
                [0x0f],  // wire type 7 does not exist
                [0x00],  // field number 0
                Array(repeating: 0xff, count: 1024),
            ]
            var generator = SeededGenerator(seed: 0x5eed)
            for _ in 0..<200 {
                payloads.append(
                    (0..<Int.random(in: 0...64, using: &generator)).map { _ in
                        UInt8.random(in: 0...255, using: &generator)
                    })
            }
            let methods = [
                Vessel_VesselService.Method.FindAvailable.descriptor, Vessel_VesselService.Method.Create.descriptor,
            ]
            let codes = try await service.withClient { client in
                var codes: [String: Int] = [:]
                for (index, payload) in payloads.enumerated() {
                    do {
                        _ = try await client.unary(
                            request: ClientRequest(message: payload),
                            descriptor: methods[index % 2],
                            serializer: RawBytesSerializer(),
                            deserializer: RawBytesDeserializer(),
                            options: .defaults
                        ) { try $0.message }
                        codes["ok", default: 0] += 1
                    } catch let error as RPCError {
                        #expect(error.code != .unknown && error.code != .unavailable, "\(payload): \(error)")
                        codes["\(error.code)", default: 0] += 1
                    }
                }
                return codes
            }
            print("status codes for \(payloads.count) malformed requests: \(codes)")
            #expect(codes.values.reduce(0, +) == payloads.count)
            #expect(service.process.isRunning)
            #expect(await service.isServing())
        }
    }

    @Test func sigtermWhileCallsRunLetsThemFinishAndExitsZero() async throws {
        let service = try startService()
        try await service.waitUntilServing()
        let outcomes = try await service.withClient { client in
            let vessels = Vessel_VesselService.Client(wrapping: client)
            return await withTaskGroup(of: String.self) { group in
                for index in 0..<40 {
                    group.addTask {
                        do {
                            _ = try await vessels.findAvailable(.with { $0.capacity = Int32(index % 4) })
                            return "ok"
                        } catch let error as RPCError {
                            return "\(error.code)"
                        } catch {
                            return "\(error)"
                        }
                    }
                }
                var outcomes: [String] = []
                for await outcome in group {
                    // The first answer proves calls are flowing; stop the service while the rest run.
                    if outcomes.isEmpty { service.process.signal(SIGTERM) }
                    outcomes.append(outcome)
                }
                return outcomes
            }
        }
        #expect(await service.process.waitForExit() == 0)
        // A call that started finishes; only calls the server had not yet accepted may be refused.
        #expect(outcomes.allSatisfy { $0 == "ok" || $0 == "unavailable" }, "\(outcomes)")
        #expect(outcomes.contains("ok"))
        print("calls during SIGTERM: \(Dictionary(grouping: outcomes, by: { $0 }).mapValues(\.count))")
    }
}
