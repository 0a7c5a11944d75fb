// swift-tools-version:6.1
// Builds the two protoc plugins that `make proto` uses to regenerate Shared/Contracts.
// Kept out of the main package so that an ordinary build never compiles them.
import PackageDescription

let package = Package(
    name: "ProtocPlugins",
    dependencies: [
        .package(url: "https://github.com/apple/swift-protobuf.git", exact: "1.39.0"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", exact: "2.4.1"),
    ],
    targets: [
        // SwiftPM needs one target of our own; the plugins are products of the dependencies.
        .target(name: "ProtocPlugins", path: "Sources")
    ]
)
