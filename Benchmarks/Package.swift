// swift-tools-version:6.1
// In-process benchmarks of Shippy's hot paths (`make bench-micro`): a package of its own, so that the main
// build never compiles the benchmark package. Time and allocations per call; see BENCHMARKS.md.
import PackageDescription

let package = Package(
    name: "ShippyBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Shippy", path: ".."),
        .package(
            url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "HotPaths",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "ShippyIdentity", package: "Shippy"),
                .product(name: "ShippyRuntime", package: "Shippy"),
                .product(name: "ShippyMongo", package: "Shippy"),
                .product(name: "ShippyContracts", package: "Shippy"),
            ],
            path: "Benchmarks/HotPaths",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    ],
    swiftLanguageModes: [.v6]
)
