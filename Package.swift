// swift-tools-version:6.1
import PackageDescription

let grpcCore = Target.Dependency.product(name: "GRPCCore", package: "grpc-swift-2")
let grpcHTTP2 = Target.Dependency.product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport")
let grpcInProcess = Target.Dependency.product(name: "GRPCInProcessTransport", package: "grpc-swift-2")
let grpcProtobuf = Target.Dependency.product(name: "GRPCProtobuf", package: "grpc-swift-protobuf")
let argumentParser = Target.Dependency.product(name: "ArgumentParser", package: "swift-argument-parser")
let logging = Target.Dependency.product(name: "Logging", package: "swift-log")
let lifecycle = Target.Dependency.product(name: "ServiceLifecycle", package: "swift-service-lifecycle")
let nioPosix = Target.Dependency.product(name: "NIOPosix", package: "swift-nio")
let nioCore = Target.Dependency.product(name: "NIOCore", package: "swift-nio")
let postgres = Target.Dependency.product(name: "PostgresNIO", package: "postgres-nio")
let jwt = Target.Dependency.product(name: "JWTKit", package: "jwt-kit")
let crypto = Target.Dependency.product(name: "Crypto", package: "swift-crypto")
let x509 = Target.Dependency.product(name: "X509", package: "swift-certificates")
let asn1 = Target.Dependency.product(name: "SwiftASN1", package: "swift-asn1")
let bcrypt = Target.Dependency.product(name: "HummingbirdBcrypt", package: "hummingbird-auth")
let configuration = Target.Dependency.product(name: "Configuration", package: "swift-configuration")
let metrics = Target.Dependency.product(name: "Metrics", package: "swift-metrics")
let tracing = Target.Dependency.product(name: "Tracing", package: "swift-distributed-tracing")
let semanticConventions = Target.Dependency.product(
    name: "OTelSemanticConventions", package: "swift-otel-semantic-conventions")

/// Each command: its executable's name and the library target with its code. Each executable is one line calling
/// the library's entry, and `shippy` is all of them in one binary (the image's), chosen by the name it runs under.
let commands = [
    ("vessel-service", "VesselService"), ("user-service", "UserService"), ("consignment-service", "ConsignmentService"),
    ("email-service", "EmailService"), ("api-gateway", "APIGateway"), ("user-cli", "UserCLI"),
    ("consignment-cli", "ConsignmentCLI"), ("vessel-cli", "VesselCLI"), ("shippy-bench", "ShippyBench"),
]
let executables: [Target] =
    commands.map { name, library in
        .executableTarget(name: name, dependencies: [.target(name: library)], path: "Services/executables/\(name)")
    } + [
        .executableTarget(
            name: "shippy", dependencies: commands.map { .target(name: $0.1) }, path: "Services/executables/shippy")
    ]

let package = Package(
    name: "Shippy",
    platforms: [.macOS(.v15)],
    products: (commands.map(\.0) + ["shippy"]).map { .executable(name: $0, targets: [$0]) } + [
        // For the in-process benchmarks of the hot paths (Benchmarks/), not for other projects.
        .library(name: "ShippyIdentity", targets: ["ShippyIdentity"]),
        .library(name: "ShippyRuntime", targets: ["ShippyRuntime"]),
        .library(name: "ShippyMongo", targets: ["ShippyMongo"]),
        .library(name: "ShippyContracts", targets: ["ShippyContracts"]),
    ],
    dependencies: [
        .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.8.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        // Service identities: the common name of a peer's verified certificate; test authorities and certificates.
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        // Certificates re-read while a service runs (rotation without a restart).
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(
            url: "https://github.com/apple/swift-configuration.git", from: "1.4.0",
            traits: ["JSON", "YAML", "Reloading", "CommandLineArguments"]),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        // OTLP over gRPC only: the HTTP exporter would add async-http-client to every build.
        .package(url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0", traits: ["OTLPGRPC"]),
        // The attribute names of the registry (rpc.* and messaging.* are still experimental there, hence the trait
        // and the pin to the minor version, as its README asks); no typed span extensions.
        .package(
            url: "https://github.com/swift-otel/swift-otel-semantic-conventions.git", .upToNextMinor(from: "1.44.0"),
            traits: ["Experimental"]),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.5.1"),
        .package(url: "https://github.com/apple/swift-openapi-runtime.git", from: "1.13.4"),
        .package(url: "https://github.com/hummingbird-project/swift-openapi-hummingbird.git", from: "2.1.0"),
        // The unit tests read the OpenAPI document (swift-configuration's YAML trait builds it anyway).
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
    ],
    targets: [
        // MongoDB C driver (libmongoc + libbson) from the distribution, found through pkg-config.
        .systemLibrary(
            name: "CMongoc",
            path: "Shared/CMongoc",
            pkgConfig: "libmongoc-1.0",
            providers: [.apt(["libmongoc-dev", "libbson-dev"])]
        ),
        // NATS C client (libnats) from the distribution, found through pkg-config.
        .systemLibrary(name: "CNats", path: "Shared/CNats", pkgConfig: "libnats", providers: [.apt(["libnats-dev"])]),
        // Events over NATS JetStream: connect, publish with acknowledgement, durable pull consumers.
        .target(
            name: "ShippyMessaging",
            dependencies: ["CNats", "ShippyDomain", logging, nioPosix, metrics],
            path: "Shared/Messaging"),
        // Generated protobuf messages and gRPC stubs (`make proto`); never edited by hand.
        .target(
            name: "ShippyContracts",
            dependencies: [grpcCore, grpcProtobuf, .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            path: "Shared/Contracts"
        ),
        // Plain domain types, validation rules and the domain error; no gRPC, no drivers.
        .target(name: "ShippyDomain", path: "Shared/Domain"),
        // Repository protocols and their in-memory stand-ins for unit tests; no driver.
        .target(name: "ShippyStorage", dependencies: ["ShippyDomain"], path: "Shared/Storage"),
        // The MongoDB repositories over libmongoc, and how a service configures and waits for MongoDB.
        .target(
            name: "ShippyMongo",
            dependencies: [
                "ShippyDomain", "ShippyStorage", "ShippyConfiguration", "ShippyTelemetry", "CMongoc", logging, nioPosix,
                metrics, semanticConventions,
            ],
            path: "Shared/Mongo"
        ),
        // The PostgreSQL repository of users over postgres-nio.
        .target(
            name: "ShippyPostgres",
            dependencies: [
                "ShippyDomain", "ShippyStorage", "ShippyTelemetry", logging, postgres, metrics, semanticConventions,
            ],
            path: "Shared/Postgres"),
        // Access tokens: ES256 signing (user service only) and local verification with public keys.
        .target(name: "ShippyIdentity", dependencies: ["ShippyDomain", jwt, crypto], path: "Shared/Identity"),
        // Finding a service's replicas by DNS and spreading calls over them: every gRPC client's transport.
        .target(
            name: "ShippyDiscovery", dependencies: ["ShippyConfiguration", grpcCore, grpcHTTP2, nioCore],
            path: "Shared/Discovery"),
        // Reading settings from flags and the environment, and service addresses: servers and CLIs alike.
        .target(
            name: "ShippyConfiguration",
            dependencies: ["ShippyDomain", configuration, logging, lifecycle],
            path: "Shared/Configuration"),
        // What the command-line tools share: one-line failures with exit codes, token input, paging.
        .target(
            name: "ShippyCLI",
            dependencies: [
                "ShippyDomain", "ShippyConfiguration", "ShippyContracts", "ShippyDiscovery", grpcCore, grpcHTTP2,
                argumentParser,
            ],
            path: "Shared/CLI"),
        // Metrics (Prometheus text on its own HTTP port, served by SwiftNIO), traces (OTLP when configured), gRPC call
        // telemetry.
        .target(
            name: "ShippyTelemetry",
            dependencies: [
                "ShippyDomain", "ShippyConfiguration", grpcCore, logging, lifecycle, metrics, tracing,
                semanticConventions, nioCore, nioPosix, .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "OTel", package: "swift-otel"),
            ],
            path: "Shared/Telemetry"
        ),
        // What every service shares: logging, gRPC server lifecycle, health, readiness, startup retry.
        .target(
            name: "ShippyRuntime",
            dependencies: [
                "ShippyContracts", "ShippyDomain", "ShippyStorage", "ShippyIdentity", "ShippyConfiguration",
                "ShippyTelemetry", "ShippyDiscovery", "ShippyMessaging", grpcCore, grpcHTTP2, grpcInProcess,
                argumentParser, logging,
                lifecycle, x509, metrics, nioCore, nioPosix, .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCertificateReloading", package: "swift-nio-extras"),
            ],
            path: "Shared/Runtime"
        ),
        .target(
            name: "VesselService",
            dependencies: [
                "ShippyContracts", "ShippyDomain", "ShippyStorage", "ShippyMongo", "ShippyRuntime", "ShippyIdentity",
                "ShippyConfiguration", grpcCore, argumentParser, logging, lifecycle, metrics,
            ],
            path: "Services/vessel-service"
        ),
        .target(
            name: "UserService",
            dependencies: [
                "ShippyContracts", "ShippyDomain", "ShippyStorage", "ShippyPostgres", "ShippyIdentity", "ShippyRuntime",
                "ShippyTelemetry", "ShippyConfiguration", "ShippyMessaging", grpcCore, argumentParser, logging,
                lifecycle, metrics, postgres, jwt, bcrypt, crypto, nioCore, nioPosix,
            ],
            path: "Services/user-service"
        ),
        .target(
            name: "UserCLI",
            dependencies: [
                "ShippyContracts", "ShippyCLI", "ShippyConfiguration", "ShippyDiscovery", grpcCore, argumentParser,
            ],
            path: "Services/user-cli"
        ),
        .target(
            name: "ConsignmentService",
            dependencies: [
                "ShippyContracts", "ShippyDomain", "ShippyStorage", "ShippyMongo", "ShippyIdentity", "ShippyRuntime",
                "ShippyConfiguration", "ShippyDiscovery", "ShippyMessaging", grpcCore, grpcHTTP2, argumentParser,
                logging,
                lifecycle, metrics, crypto,
            ],
            path: "Services/consignment-service"
        ),
        .target(
            name: "ConsignmentCLI",
            dependencies: [
                "ShippyContracts", "ShippyCLI", "ShippyConfiguration", "ShippyDiscovery", grpcCore, argumentParser,
            ],
            path: "Services/consignment-cli"
        ),
        .target(
            name: "VesselCLI",
            dependencies: [
                "ShippyContracts", "ShippyCLI", "ShippyConfiguration", "ShippyDiscovery", grpcCore, argumentParser,
            ],
            path: "Services/vessel-cli"
        ),
        // Load and figures: scenarios over real gRPC, latency histograms, CPU per call read from /proc.
        .target(
            name: "ShippyBench",
            dependencies: [
                "ShippyContracts", "ShippyCLI", "ShippyConfiguration", "ShippyDiscovery", grpcCore, argumentParser,
                bcrypt, .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            path: "Services/shippy-bench"
        ),
        // The HTTP/JSON edge: routing and types generated from its OpenAPI document (`make openapi`), served by
        // Hummingbird, calling the services over gRPC.
        .target(
            name: "APIGateway",
            dependencies: [
                "ShippyRuntime", "ShippyContracts", "ShippyConfiguration", "ShippyDiscovery", "ShippyDomain",
                "ShippyIdentity", "ShippyMessaging", grpcCore, argumentParser, logging, lifecycle, metrics, nioCore,
                nioPosix,
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "OpenAPIHummingbird", package: "swift-openapi-hummingbird"),
            ],
            path: "Services/api-gateway",
            exclude: ["openapi-generator-config.yaml"],
            resources: [.copy("Public"), .copy("openapi.yaml")]
        ),
        .target(
            name: "EmailService",
            dependencies: [
                "ShippyContracts", "ShippyDomain", "ShippyStorage", "ShippyMessaging", "ShippyRuntime",
                "ShippyTelemetry", "ShippyConfiguration", argumentParser, logging, lifecycle, metrics,
            ],
            path: "Services/email-service"
        ),
        // What the test targets share: servers and processes started and stopped by scoped helpers, keys,
        // fixtures, the in-process runner. No service's code: the targets below import the services' libraries.
        .target(
            name: "ShippyTestSupport",
            dependencies: [
                "ShippyContracts", "ShippyDomain", "ShippyIdentity", "ShippyStorage", "ShippyMongo", "ShippyPostgres",
                "ShippyRuntime", "ShippyDiscovery", "ShippyConfiguration", grpcCore, grpcHTTP2, grpcInProcess, logging,
                lifecycle, jwt, postgres, crypto, x509, asn1,
            ],
            path: "Tests/ShippyTestSupport"
        ),
        // In process, no servers: domain rules, handlers through the production wiring, configuration.
        .testTarget(
            name: "ShippyUnitTests",
            dependencies: [
                "ShippyTestSupport", "VesselService", "UserService", "ConsignmentService", "ConsignmentCLI",
                "EmailService", "ShippyMessaging", "ShippyIdentity", "ShippyContracts", "ShippyDomain", "ShippyStorage",
                "ShippyMongo", "ShippyRuntime", "ShippyConfiguration", "ShippyCLI", "ShippyDiscovery", grpcCore,
                grpcHTTP2, grpcInProcess, lifecycle, logging, jwt, .product(name: "Yams", package: "Yams"),
            ],
            path: "Tests/ShippyUnitTests"
        ),
        // Our code against real servers (MongoDB, PostgreSQL, NATS), in the test process.
        .testTarget(
            name: "ShippyIntegrationTests",
            dependencies: [
                "ShippyTestSupport", "ConsignmentService", "EmailService", "ShippyMessaging", "ShippyContracts",
                "ShippyDomain", "ShippyIdentity", "ShippyStorage", "ShippyMongo", "ShippyPostgres", "ShippyRuntime",
                "ShippyConfiguration", "ShippyDiscovery", grpcCore, grpcHTTP2, logging, postgres, jwt,
            ],
            path: "Tests/ShippyIntegrationTests"
        ),
        // The built executables as processes, over real sockets, against real servers.
        .testTarget(
            name: "ShippyEndToEndTests",
            dependencies: [
                "ShippyTestSupport", "ShippyContracts", "ShippyDomain", "ShippyIdentity", "ShippyStorage",
                "ShippyMongo",
                "ShippyRuntime", "ShippyDiscovery", grpcCore, grpcHTTP2, jwt,
            ],
            path: "Tests/ShippyEndToEndTests"
        ),
    ] + executables,
    swiftLanguageModes: [.v6]
)
