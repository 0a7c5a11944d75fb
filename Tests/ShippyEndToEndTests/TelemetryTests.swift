import Foundation
import ShippyTestSupport
import Testing

/// Metrics and traces of the real services, after the user story: what an operator's Prometheus scrapes and what
/// a trace backend receives over OTLP (a real OTLP/gRPC receiver, Tests/Tools/otlp_receiver.py).
@Suite(.timeLimit(.minutes(3)), .dropsItsDatabases) struct TelemetryTests {
    let sample = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("consignment.json").path

    /// The services of one story, with a NATS server of their own (so that no other test's email-service takes
    /// this story's event) and `extra` settings for each.
    struct Story {
        let system: ShippySystem
        let nats: NATSServer
        let vessel, user, consignment, email: ServiceProcess
        let mail: String

        static func start(extra: [String: String] = [:]) async throws -> Story {
            let system = try ShippySystem()
            let nats = NATSServer(port: try freePort())
            try await nats.start()
            let mail = FileManager.default.temporaryDirectory.appendingPathComponent("shippy-mail-\(UUID())").path
            let vessel = try system.startVessel(extra: extra)
            let user = try await system.startUser(
                extra: extra.merging(["BCRYPT_COST": "4", "NATS_URL": nats.url]) { $1 })
            let consignment = try system.startConsignment(
                vessel: vessel, extra: extra.merging(["NATS_URL": nats.url]) { $1 })
            let email = try ServiceProcess.start(
                "email-service",
                environment: extra.merging(["NATS_URL": nats.url, "MAILER": "files", "MAIL_DIR": mail]) { $1 })
            return Story(
                system: system, nats: nats, vessel: vessel, user: user, consignment: consignment, email: email,
                mail: mail)
        }

        var services: [ServiceProcess] { [vessel, user, consignment, email] }

        func stop() async {
            await ShippySystem.stopAll(services)
            await nats.destroy()
        }

        /// Signs Ann up with user-cli (which logs her in too), then ships the sample with consignment-cli.
        /// - Returns: Ann's password and token.
        func shipAsAnn(sample: String) async throws -> (password: String, token: String) {
            let password = "ann-secret-\(UUID().uuidString.prefix(8))"
            let signUp = try await run(
                "user-cli", ["--name", "Ann", "--email", "ann@example.com", "--password", password],
                environment: ["USER_SERVICE_ADDRESS": "127.0.0.1:\(user.port)"])
            #expect(signUp.status == 0, "\(signUp.error)")
            let token = try #require(
                signUp.output.split(separator: "\n").last?.split(separator: " ").last.map(String.init))
            let shipped = try await run(
                "consignment-cli", [sample, token],
                environment: ["CONSIGNMENT_SERVICE_ADDRESS": "127.0.0.1:\(consignment.port)"])
            #expect(shipped.status == 0, "\(shipped.error)")
            return (password, token)
        }

        func run(
            _ tool: String, _ arguments: [String], environment: [String: String]
        ) async throws -> (
            status: Int32?, output: String, error: String
        ) {
            let process = try ChildProcess(
                try TestEnvironment.executable(tool), arguments: arguments, environment: environment)
            let status = await process.waitForExit(timeout: .seconds(60))
            await process.stop()
            return (status, process.output, process.errorOutput)
        }
    }

    @Test func metricsCountTheUserStoryExactly() async throws {
        let story = try await Story.start()
        try await cleaningUp({ await story.stop() }) {
            for service in story.services { try await service.waitUntilServing() }
            let before = try await Scrape(story.consignment.metrics())
            #expect(before["shippy_consignments_created_total"] ?? 0 == 0)

            let (password, _) = try await story.shipAsAnn(sample: sample)
            let wrong = try await story.run(
                "user-cli", ["login", "--email", "ann@example.com"],
                environment: [
                    "USER_SERVICE_ADDRESS": "127.0.0.1:\(story.user.port)", "SHIPPY_PASSWORD": password + "x",
                ])
            #expect(wrong.status != 0)

            let consignment = try await Scrape(story.consignment.metrics())
            #expect(consignment["shippy_consignments_created_total"] == 1)
            #expect(consignment["shippy_containers_booked_total"] == 3)
            let create = #"grpc_method="CreateConsignment",grpc_service="consignment.ShippingService""#
            #expect(consignment["grpc_server_handled_total{grpc_code=\"OK\",\(create)}"] == 1)
            #expect(consignment["grpc_server_handling_seconds_count{\(create)}"] == 1)
            #expect(consignment["grpc_server_handling_seconds_bucket{\(create),le=\"0.0001\"}"] != nil)
            #expect(consignment["grpc_server_handling_seconds_bucket{\(create),le=\"10.0\"}"] == 1)
            #expect(consignment["grpc_server_in_flight{\(create)}"] == 0)
            let book = #"grpc_method="Book",grpc_service="vessel.VesselService""#
            #expect(consignment["grpc_client_handled_total{grpc_code=\"OK\",\(book)}"] == 1)
            #expect((consignment["process_resident_memory_bytes"] ?? 0) > 1_000_000)
            #expect(consignment["process_open_fds"] != nil && consignment["process_start_time_seconds"] != nil)

            let vessel = try await Scrape(story.vessel.metrics())
            #expect(vessel["grpc_server_handled_total{grpc_code=\"OK\",\(book)}"] == 1)
            #expect(
                vessel[
                    "grpc_server_handled_total{grpc_code=\"OK\",grpc_method=\"Confirm\",grpc_service=\"vessel.VesselService\"}"
                ] == 1)
            // The sample's three containers on the smallest vessel that takes them (vessel003 holds 12).
            let roomRead = try await eventually(within: .seconds(15)) {
                try await Scrape(story.vessel.metrics())["shippy_vessel_room_containers{vessel=\"vessel003\"}"] == 9
            }
            #expect(roomRead)

            let user = try await Scrape(story.user.metrics())
            #expect(user["shippy_signups_total"] == 1)
            #expect(user["shippy_logins_total{outcome=\"ok\"}"] == 1)
            #expect(user["shippy_logins_total{outcome=\"refused\"}"] == 1)
            #expect(
                user[
                    "grpc_server_handled_total{grpc_code=\"UNAUTHENTICATED\",grpc_method=\"Auth\",grpc_service=\"user.UserService\"}"
                ] == 1)
            #expect(user["shippy_build_info{service=\"user-service\",version=\"0.6.0\"}"] == 1)
            let published = try await eventually(within: .seconds(15)) {
                let user = try await Scrape(story.user.metrics())
                return user["nats_published_total{outcome=\"ok\",subject=\"user.created\"}"] == 1
                    && user["outbox_pending_events"] == 0
            }
            #expect(published)
            let mailed = try await eventually(within: .seconds(15)) {
                try await Scrape(story.email.metrics())[
                    "nats_consumed_total{outcome=\"acked\",subject=\"user.created\"}"] == 1
            }
            #expect(mailed)
        }
    }

    /// Runs `body` with a real OTLP/gRPC receiver: the settings that send a process's spans to it (in batches
    /// every 100 ms), and the file it writes them to.
    func withTraceReceiver(
        _ body: (_ tracing: [String: String], _ spansFile: String) async throws -> Void
    )
        async throws
    {
        let spansFile = FileManager.default.temporaryDirectory.appendingPathComponent("shippy-spans-\(UUID())").path
        let receiver = try ChildProcess(
            URL(fileURLWithPath: try TestEnvironment.value("SHIPPY_TEST_PYTHON")),
            arguments: [Self.receiverScript, spansFile])
        try await cleaningUp({ await receiver.stop() }) {
            let listening = await eventually(within: .seconds(20)) { receiver.output.hasPrefix("listening ") }
            try #require(listening, "the OTLP receiver did not start: \(receiver.errorOutput)")
            let port = receiver.output.split(separator: "\n")[0].dropFirst("listening ".count)
            try await body(
                ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:\(port)", "OTEL_BSP_SCHEDULE_DELAY": "100"], spansFile
            )
        }
    }

    @Test func oneConsignmentIsOneTraceAcrossServicesAndTheWelcomeMailJoinsTheSignUp() async throws {
        try await withTraceReceiver { tracing, spansFile in
            let story = try await Story.start(extra: tracing)
            try await cleaningUp({ await story.stop() }) {
                for service in story.services { try await service.waitUntilServing() }
                let (password, token) = try await story.shipAsAnn(sample: sample)

                // Each service exports its own batches: user-service's publish span may arrive after the mail's.
                var spans: [Span] = []
                let complete = await eventually(within: .seconds(30)) {
                    spans = Span.read(spansFile)
                    return spans.contains { $0.service == "email-service" && $0.name == "process user.created" }
                        && spans.contains { $0.service == "email-service" && $0.name == "process consignment.booked" }
                        && spans.contains { $0.service == "user-service" && $0.name == "publish user.created" }
                        && spans.contains { $0.service == "consignment-service" && $0.name.hasPrefix("insert") }
                        // The server span ends after its children, so it may come in a later batch.
                        && spans.contains { $0.name == "consignment.ShippingService/CreateConsignment" }
                }
                #expect(complete, "spans received: \(spans.map { "\($0.service) \($0.name)" })")

                // CreateConsignment: one trace from consignment-service through vessel-service and MongoDB.
                let create = try #require(spans.first { $0.name == "consignment.ShippingService/CreateConsignment" })
                #expect(create.service == "consignment-service" && create.kind == Span.server)
                let trace = spans.filter { $0.traceID == create.traceID }
                let bookCall = try #require(
                    trace.first { $0.name == "vessel.VesselService/Book" && $0.kind == Span.client })
                #expect(bookCall.service == "consignment-service" && bookCall.parentID == create.spanID)
                let booked = try #require(
                    trace.first { $0.name == "vessel.VesselService/Book" && $0.kind == Span.server })
                #expect(booked.service == "vessel-service" && booked.parentID == bookCall.spanID)
                // The room taken by one conditional update of the vessel, inside Book.
                #expect(
                    trace.contains {
                        $0.service == "vessel-service" && $0.name == "findAndModify vessels"
                            && $0.parentID == booked.spanID
                            && $0.attributes["db.system.name"] == "mongodb"
                    }, "\(trace)")
                let insert = trace.first { $0.service == "consignment-service" && $0.name == "insert consignments" }
                #expect(insert?.parentID == create.spanID)
                #expect(trace.contains { $0.name == "vessel.VesselService/Confirm" && $0.service == "vessel-service" })
                try Self.expectEventJoins(trace, "consignment.booked", publishedBy: "consignment-service")

                // The sign-up: its PostgreSQL insert, the outbox's publication and the welcome mail, one trace.
                let signUp = try #require(
                    spans.first { $0.name == "user.UserService/Create" && $0.kind == Span.server })
                let signUpTrace = spans.filter { $0.traceID == signUp.traceID }
                #expect(
                    signUpTrace.contains {
                        $0.name == "INSERT users" && $0.attributes["db.system.name"] == "postgresql"
                    })
                #expect(signUpTrace.contains { $0.name == "bcrypt hash" })
                let publish = try #require(signUpTrace.first { $0.name == "publish user.created" })
                let mail = try #require(signUpTrace.first { $0.name == "process user.created" })
                #expect(mail.service == "email-service" && mail.parentID == publish.spanID)

                // Nothing secret leaves in a span: no password, token or bcrypt hash, in a name or an attribute.
                for span in spans {
                    let text = ([span.name] + span.attributes.keys + span.attributes.values).joined(separator: " ")
                    #expect(!text.contains(password) && !text.contains(token) && !text.contains("$2"), "\(span)")
                }
            }
        }
    }

    /// A `traceparent` from outside starts no trace of ours: the gateway's span begins a trace of its own (its
    /// sampler decides), unless the peer is a trusted proxy, whose trace the gateway continues.
    @Test func traceContextFromOutsideIsNotTakenAsIs() async throws {
        try await withTraceReceiver { tracing, spansFile in
            // The services are never called: /openapi.yaml is the gateway's own.
            let addresses = ["USER_SERVICE_ADDRESS", "CONSIGNMENT_SERVICE_ADDRESS", "VESSEL_SERVICE_ADDRESS"]
            let unused = Dictionary(uniqueKeysWithValues: addresses.map { ($0, "127.0.0.1:9") })
            let outside = try ServiceProcess.start("api-gateway", environment: unused.merging(tracing) { $1 })
            let behindProxy = try ServiceProcess.start(
                "api-gateway",
                environment: unused.merging(tracing) { $1 }.merging(["TRUSTED_PROXIES": "127.0.0.1"]) { $1 })
            try await cleaningUp({ await ShippySystem.stopAll([outside, behindProxy]) }) {
                let forged = "4bf92f3577b34da6a3ce929d0e0e4736"
                let proxied = "0af7651916cd43dd8448eb211c80319c"
                for (gateway, trace) in [(outside, forged), (behindProxy, proxied)] {
                    let answered = await eventually(within: .seconds(30)) {
                        let exchange = try? await http(
                            "GET", "http://127.0.0.1:\(gateway.port)/openapi.yaml",
                            headers: ["traceparent": "00-\(trace)-00f067aa0ba902b7-01"])
                        return exchange?.status == 200
                    }
                    try #require(answered, "the gateway did not answer: \(gateway.process.errorOutput)")
                }
                var spans: [Span] = []
                let both = await eventually(within: .seconds(30)) {
                    spans = Span.read(spansFile).filter { $0.service == "api-gateway" && $0.kind == Span.server }
                    return spans.contains { $0.traceID == proxied } && spans.count >= 2
                }
                #expect(both, "gateway spans: \(spans)")
                #expect(!spans.contains { $0.traceID == forged }, "a forged trace id was taken: \(spans)")
                #expect(spans.contains { $0.traceID == proxied && $0.parentID == "00f067aa0ba902b7" })
            }
        }
    }

    /// An event published from an outbox and mailed, in the trace of the change that stored it: the publisher's
    /// producer span, and email-service's span as its child.
    static func expectEventJoins(
        _ trace: [Span], _ subject: String, publishedBy publisher: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let publish = try #require(trace.first { $0.name == "publish \(subject)" }, sourceLocation: sourceLocation)
        #expect(publish.service == publisher && publish.kind == Span.producer, sourceLocation: sourceLocation)
        let mail = try #require(trace.first { $0.name == "process \(subject)" }, sourceLocation: sourceLocation)
        #expect(mail.service == "email-service" && mail.parentID == publish.spanID, sourceLocation: sourceLocation)
    }

    static let receiverScript = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Tools/otlp_receiver.py").path

    /// One span as the receiver wrote it.
    struct Span: CustomStringConvertible {
        static let server = 2
        static let client = 3
        static let producer = 4
        var service, name, traceID, spanID, parentID: String
        var kind: Int
        var attributes: [String: String]

        var description: String { "\(service) \(name) \(spanID) parent \(parentID) \(attributes)" }

        static func read(_ path: String) -> [Span] {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
            return text.split(separator: "\n").compactMap { line in
                guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                    return nil
                }
                return Span(
                    service: object["service"] as? String ?? "", name: object["name"] as? String ?? "",
                    traceID: object["trace_id"] as? String ?? "", spanID: object["span_id"] as? String ?? "",
                    parentID: object["parent_span_id"] as? String ?? "", kind: object["kind"] as? Int ?? 0,
                    attributes: object["attributes"] as? [String: String] ?? [:])
            }
        }
    }
}

/// A Prometheus text exposition, by series: `name{label="value",…}` with the labels in alphabetical order.
struct Scrape {
    let values: [String: Double]

    init(_ text: String) {
        var values: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                continue
            }
            values[Self.normalised(line[..<space])] = value
        }
        self.values = values
    }

    /// The series with its labels sorted (none of ours holds `",` inside a value).
    private static func normalised(_ series: Substring) -> String {
        guard let open = series.firstIndex(of: "{"), series.hasSuffix("}") else { return String(series) }
        let labels = series[series.index(after: open)..<series.index(before: series.endIndex)]
            .split(separator: "\",").map { $0.hasSuffix("\"") ? String($0) : $0 + "\"" }
        return series[..<open] + "{" + labels.sorted().joined(separator: ",") + "}"
    }

    subscript(_ series: String) -> Double? { values[series] }
}
