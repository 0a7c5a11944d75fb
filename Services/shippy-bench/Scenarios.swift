import GRPCCore
import ShippyContracts
import ShippyDiscovery

/// What a scenario's streams work with.
struct ScenarioContext: Sendable {
    var connections: [String: Connections]
    /// Nil when no scenario of the run needs the run's users.
    var fixtures: Fixtures!
    var recorder: Recorder
    var options: CallOptions
    /// Names the users the run signs up, so that they are its own.
    var prefix: String
    /// Calls/s of the reads that `auth-under-reads` runs beside its logins.
    var readsBesideLogins: Double

    func users(_ worker: Int) -> User_UserService.Client<ServiceTransport> {
        .init(wrapping: connections["user"]!.client(worker))
    }
    func vessels(_ worker: Int) -> Vessel_VesselService.Client<ServiceTransport> {
        .init(wrapping: connections["vessel"]!.client(worker))
    }
    func consignments(_ worker: Int) -> Consignment_ShippingService.Client<ServiceTransport> {
        .init(wrapping: connections["consignment"]!.client(worker))
    }
}

/// A named load: the calls it makes, at a pace the command line may change.
struct Scenario: Sendable {
    var name: String
    var summary: String
    /// The pace when the command line names none; `cores` is this machine's.
    var defaultPace: @Sendable (_ cores: Int) -> Pace
    /// Where the scenario's main call is served: its CPU per call is compared with Health/Check there.
    var server: String
    /// Whether it needs the run's users (health checks and the greeter do not).
    var needsAccounts = true
    /// Whether it hashes passwords: its report gives the machine's bcrypt ceiling beside its logins.
    var hashes = false
    /// Each call's deadline when the scenario sets its own (the bursts); else `--timeout`.
    var timeout: Duration?
    var streams: @Sendable (ScenarioContext, Pace) -> [LoadStream]

    /// One call repeated at `pace`.
    static func single(
        _ name: String, _ summary: String, server: String, needsAccounts: Bool = true, hashes: Bool = false,
        pace: @escaping @Sendable (Int) -> Pace = { _ in .closed(workers: 64) },
        _ call: @escaping @Sendable (ScenarioContext, Int, ContinuousClock.Instant) async -> Void
    ) -> Scenario {
        Scenario(
            name: name, summary: summary, defaultPace: pace, server: server, needsAccounts: needsAccounts,
            hashes: hashes
        ) {
            context, pace in
            [LoadStream(pace: pace) { iteration, due in await call(context, iteration, due) }]
        }
    }

    static let all: [Scenario] = [
        health("vessel"), health("user"), health("consignment"),
        .single(
            "greeter", "helloworld.Greeter/SayHello on the bare greeter (--greeter)", server: "greeter",
            needsAccounts: false
        ) {
            context, iteration, due in
            await context.recorder.measure("Greeter/SayHello", since: due) {
                try await context.connections["greeter"]!.client(iteration).sayHello(options: context.options)
            }
        },
        .single("validate-token", "user.UserService/ValidateToken with a valid token", server: "user") {
            context, iteration, due in await validateToken(context, iteration, due)
        },
        .single("find-available", "vessel.VesselService/FindAvailable (MongoDB read)", server: "vessel") {
            context, iteration, due in await findAvailable(context, iteration, due)
        },
        .single(
            "get-consignments", "consignment.ShippingService/GetConsignments, empty result, with a token",
            server: "consignment"
        ) { context, iteration, due in await getConsignments(context, iteration, due) },
        .single(
            "token-check",
            "GetConsignments with page_size -1: the token is checked, then the call refused before MongoDB",
            server: "consignment"
        ) { context, iteration, due in
            await context.recorder.measure("GetConsignments (refused after the token check)", since: due) {
                try await expecting(.invalidArgument) {
                    try await context.consignments(iteration).getConsignments(
                        .with { $0.pageSize = -1 }, metadata: context.fixtures.reader.metadata,
                        options: context.options)
                }
            }
        },
        .single(
            "forged-token", "GetConsignments with a token whose signature is wrong: refused as unauthenticated",
            server: "consignment"
        ) { context, iteration, due in
            await context.recorder.measure("GetConsignments (forged token)", since: due) {
                try await expecting(.unauthenticated) {
                    try await context.consignments(iteration).getConsignments(
                        .init(), metadata: ["authorization": "Bearer \(context.fixtures.forgedToken)"],
                        options: context.options)
                }
            }
        },
        .single(
            "create-consignment", "consignment.ShippingService/CreateConsignment (books a vessel)",
            server: "consignment"
        ) { context, iteration, due in
            await ship(context, as: context.fixtures.shipper, iteration, due)
        },
        auth,
        Scenario(
            name: "reads", summary: "ValidateToken, FindAvailable, GetConsignments in turn, at a steady rate",
            defaultPace: { _ in .open(perSecond: Run.readsRate) }, server: "user"
        ) { context, pace in [reads(context, pace)] },
        Scenario(
            name: "auth-under-reads",
            summary: "auth at full speed while `reads` runs beside it (--reads-beside-logins)",
            defaultPace: { cores in .closed(workers: cores) }, server: "user", hashes: true
        ) { context, pace in
            auth.streams(context, pace) + [reads(context, .open(perSecond: context.readsBesideLogins))]
        },
        Scenario(
            name: "shippers",
            summary: "each worker a new shipper: sign up, log in, then ship and list five times",
            defaultPace: { _ in .closed(workers: 4) }, server: "consignment", hashes: true
        ) { context, pace in
            [
                LoadStream(pace: pace) { _, due in
                    let email = Fixtures.email(context.prefix, "shipper-\(UInt64.random(in: .min ... .max))")
                    let signedUp = await context.recorder.measure("Create+Auth (sign-up, log-in)", since: due) {
                        try await Fixtures.signUp(
                            email, users: context.connections["user"]!.client(Int.random(in: 0..<64)),
                            options: context.options)
                    }
                    guard let shipper = signedUp else { return }
                    for trip in 0..<5 {
                        await ship(context, as: shipper, trip, .now)
                        await context.recorder.measure("GetConsignments") {
                            try await context.consignments(trip).getConsignments(
                                .with { $0.pageSize = 10 }, metadata: shipper.metadata, options: context.options)
                        }
                    }
                }
            ]
        },
        Scenario(
            name: "signup-burst", summary: "40 sign-ups at once, each with a 60 s deadline: every one to be served",
            defaultPace: { _ in .burst(calls: 40) }, server: "user", needsAccounts: false, hashes: true,
            timeout: .seconds(60)
        ) { context, pace in
            [
                LoadStream(pace: pace) { iteration, due in
                    await context.recorder.measure("Create (sign-up)", since: due) {
                        try await context.users(iteration).create(
                            .with {
                                $0.name = "Bench"
                                $0.email = Fixtures.email(context.prefix, "burst-\(UInt64.random(in: .min ... .max))")
                                $0.password = "bench password \(iteration)"
                            }, options: context.options)
                    }
                }
            ]
        },
        Scenario(
            name: "login-flood",
            summary: "300 logins at once, each with a 2 s deadline: each served or refused (busy) within it",
            defaultPace: { _ in .burst(calls: 300) }, server: "user", hashes: true, timeout: .seconds(2)
        ) { context, pace in
            [
                LoadStream(pace: pace) { iteration, due in
                    await context.recorder.measure("Auth", since: due, refusedAs: "Auth (refused: busy)") {
                        try await logIn(context, iteration)
                    }
                }
            ]
        },
        Scenario(
            name: "logins-beside-flood",
            summary:
                "the reader's logins one at a time, beside 40 wrong logins/s from another client behind the gateway",
            defaultPace: { _ in .closed(workers: 1) }, server: "user", hashes: true
        ) { context, pace in
            [
                LoadStream(pace: pace) { iteration, due in
                    await context.recorder.measure("Auth", since: due) { try await logIn(context, iteration) }
                },
                LoadStream(pace: .open(perSecond: 40)) { iteration, due in
                    // Unknown emails (each checked against the decoy hash, none throttled), from one client that
                    // a gateway names: user-service takes its word from a trusted gateway (make bench: 127.0.0.1).
                    let metadata: Metadata = ["shippy-client-address": "192.0.2.66"]
                    await context.recorder.measure(
                        "Auth (the flood, wrong password)", since: due, refusedAs: "Auth (the flood, refused: busy)"
                    ) {
                        try await expecting(.unauthenticated) {
                            try await context.users(iteration).auth(
                                .with {
                                    $0.email = Fixtures.email(context.prefix, "flood-\(iteration)")
                                    $0.password = "a wrong guess"
                                }, metadata: metadata, options: context.options)
                        }
                    }
                },
            ]
        },
    ]

    static func logIn(_ context: ScenarioContext, _ iteration: Int) async throws -> User_Token {
        let reader = context.fixtures.reader
        return try await context.users(iteration).auth(
            .with {
                $0.email = reader.email
                $0.password = reader.password
            }, options: context.options)
    }

    /// Logins of the run's reader, as many at once as user-service hashes; `auth-under-reads` runs it too.
    static let auth = Scenario.single(
        "auth", "user.UserService/Auth (bcrypt), as many at once as user-service hashes",
        server: "user", hashes: true, pace: { cores in .closed(workers: cores) }
    ) { context, iteration, due in
        await context.recorder.measure("Auth", since: due) { try await logIn(context, iteration) }
    }

    /// Runs a call that must fail with `code`: that failure is its success.
    static func expecting(_ code: RPCError.Code, _ call: () async throws -> some Any) async throws {
        do {
            _ = try await call()
        } catch let error as RPCError where error.code == code {
            return
        }
        throw RPCError(code: .unknown, message: "expected \(code), got an answer")
    }

    static func health(_ service: String) -> Scenario {
        .single(
            "health-\(service)", "grpc.health.v1.Health/Check on \(service)-service", server: service,
            needsAccounts: false
        ) {
            context, iteration, due in
            await context.recorder.measure("Health/Check", since: due) {
                try await Grpc_Health_V1_Health.Client(wrapping: context.connections[service]!.client(iteration))
                    .check(.init(), options: context.options)
            }
        }
    }

    static func reads(_ context: ScenarioContext, _ pace: Pace) -> LoadStream {
        LoadStream(pace: pace) { iteration, due in
            switch iteration % 3 {
            case 0: await validateToken(context, iteration, due)
            case 1: await findAvailable(context, iteration, due)
            default: await getConsignments(context, iteration, due)
            }
        }
    }

    static func validateToken(_ context: ScenarioContext, _ iteration: Int, _ due: ContinuousClock.Instant) async {
        await context.recorder.measure("ValidateToken", since: due) {
            let answer = try await context.users(iteration).validateToken(
                .with { $0.token = context.fixtures.reader.token }, options: context.options)
            guard answer.valid else { throw RPCError(code: .unauthenticated, message: "token reported invalid") }
        }
    }

    static func findAvailable(_ context: ScenarioContext, _ iteration: Int, _ due: ContinuousClock.Instant) async {
        await context.recorder.measure("FindAvailable", since: due) {
            try await context.vessels(iteration).findAvailable(
                .with {
                    $0.capacity = 1
                    $0.maxWeight = 1
                }, options: context.options)
        }
    }

    static func getConsignments(_ context: ScenarioContext, _ iteration: Int, _ due: ContinuousClock.Instant) async {
        await context.recorder.measure("GetConsignments", since: due) {
            try await context.consignments(iteration).getConsignments(
                .init(), metadata: context.fixtures.reader.metadata, options: context.options)
        }
    }

    /// One container of 1 kg, with an idempotency key as a careful client sends it.
    static func ship(
        _ context: ScenarioContext, as shipper: Fixtures.Account, _ iteration: Int, _ due: ContinuousClock.Instant
    ) async {
        var metadata = shipper.metadata
        metadata.addString("\(context.prefix)\(UInt64.random(in: .min ... .max))", forKey: "idempotency-key")
        await context.recorder.measure("CreateConsignment", since: due) {
            try await context.consignments(iteration).createConsignment(
                .with {
                    $0.description_p = "shippy-bench"
                    $0.weight = 1
                    $0.containers = [
                        .with {
                            $0.customerID = "bench"; $0.origin = "bench"
                        }
                    ]
                }, metadata: metadata, options: context.options)
        }
    }
}
