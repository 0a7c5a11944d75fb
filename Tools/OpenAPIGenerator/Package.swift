// swift-tools-version:6.1
// Builds swift-openapi-generator, which `make openapi` uses to regenerate the API gateway's server code from
// Services/api-gateway/openapi.yaml. Kept out of the main package so that an ordinary build never compiles it.
import PackageDescription

let package = Package(
    name: "OpenAPIGeneratorTool",
    dependencies: [
        .package(url: "https://github.com/apple/swift-openapi-generator.git", exact: "1.14.3")
    ],
    targets: [
        // SwiftPM needs one target of our own; the generator is a product of the dependency.
        .target(name: "GeneratorTool", path: "Sources")
    ]
)
