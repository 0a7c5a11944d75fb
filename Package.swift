// swift-tools-version:6.1
import PackageDescription

let grpcCore = Target.Dependency.product(name: "GRPCCore", package: "grpc-swift-2")
let grpcHTTP2 = Target.Dependency.product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport")
let grpcProtobuf = Target.Dependency.product(name: "GRPCProtobuf", package: "grpc-swift-protobuf")
let argumentParser = Target.Dependency.product(name: "ArgumentParser", package: "swift-argument-parser")
let logging = Target.Dependency.product(name: "Logging", package: "swift-log")
let lifecycle = Target.Dependency.product(name: "ServiceLifecycle", package: "swift-service-lifecycle")
let nioPosix = Target.Dependency.product(name: "NIOPosix", package: "swift-nio")

let package = Package(
    name: "Shippy",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "vessel-service", targets: ["VesselService"])
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
    ],
    targets: [
        // MongoDB C driver (libmongoc + libbson) from the distribution, found through pkg-config.
        .systemLibrary(
            name: "CMongoc",
            path: "Shared/CMongoc",
            pkgConfig: "libmongoc-1.0",
            providers: [.apt(["libmongoc-dev", "libbson-dev"])]
        ),
        // Generated protobuf messages and gRPC stubs (`make proto`); never edited by hand.
        .target(
            name: "ShippyContracts",
            dependencies: [grpcCore, grpcProtobuf, .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            path: "Shared/Contracts"
        ),
        // Plain domain types, validation rules and the domain error; no gRPC, no drivers.
        .target(name: "ShippyDomain", path: "Shared/Domain"),
        // Repository protocols, their MongoDB implementations and in-memory stand-ins for unit tests.
        .target(
            name: "ShippyStorage",
            dependencies: ["ShippyDomain", "CMongoc", logging, nioPosix],
            path: "Shared/Storage"
        ),
        // What every executable shares: configuration, logging, gRPC server lifecycle, health, startup retry.
        .target(
            name: "ShippyRuntime",
            dependencies: ["ShippyContracts", "ShippyDomain", grpcCore, grpcHTTP2, argumentParser, logging, lifecycle],
            path: "Shared/Runtime"
        ),
        .executableTarget(
            name: "VesselService",
            dependencies: ["ShippyContracts", "ShippyDomain", "ShippyStorage", "ShippyRuntime", grpcCore, grpcHTTP2, argumentParser, logging, lifecycle],
            path: "Services/vessel-service"
        ),
        .testTarget(
            name: "ShippyTests",
            dependencies: [
                "VesselService", "ShippyContracts", "ShippyDomain", "ShippyStorage", "ShippyRuntime", grpcCore, grpcHTTP2,
                .product(name: "GRPCInProcessTransport", package: "grpc-swift-2"), logging, lifecycle,
            ],
            path: "Tests/ShippyTests"
        ),
    ],
    swiftLanguageModes: [.v6]
)
