import Benchmark
import Crypto
import Foundation
import JWTKit
import ShippyContracts
import ShippyDomain
import ShippyIdentity
import ShippyMongo
import ShippyRuntime

/// What each call of a service does in its own process besides gRPC: verify a token, encode and decode
/// BSON, parse and serialize protobuf. Time and allocations per call.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal, .throughput], maxDuration: .seconds(3))

    Benchmark("Token: ES256 verification") { (benchmark: Benchmark, fixture: TokenFixture) in
        for _ in benchmark.scaledIterations { blackHole(try await fixture.verifier.verify(fixture.token)) }
    } setup: {
        try await TokenFixture()
    }
    Benchmark("Token: verification through the cache (a hit)") { (benchmark: Benchmark, fixture: TokenFixture) in
        for _ in benchmark.scaledIterations { blackHole(try await fixture.cache.verify(fixture.token)) }
    } setup: {
        let fixture = try await TokenFixture()
        _ = try await fixture.cache.verify(fixture.token)
        return fixture
    }
    Benchmark("Token: a forged signature through the cache (refused)") {
        (benchmark: Benchmark, fixture: TokenFixture) in
        for _ in benchmark.scaledIterations { blackHole(try? await fixture.cache.verify(fixture.forged)) }
    } setup: {
        try await TokenFixture()
    }

    let vessel = Vessel(id: "vessel003", name: "Coastal Feeder", capacity: 12, maxWeight: 80_000)
    Benchmark("BSON: a vessel encoded") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(BSONFields(vessel).bsonBytes) }
    }
    let stored = BSONFields(vessel).bsonBytes
    Benchmark("BSON: a vessel decoded") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try Vessel(try BSONFields(bsonBytes: stored))) }
    }

    let consignment = Consignment_Consignment.with {
        $0.description_p = "This is a test consignment"
        $0.weight = 55_000
        $0.containers = (1...3).map { index in
            .with {
                $0.customerID = "cust00\(index)"
                $0.origin = "Manchester, United Kingdom"
                $0.userID = "user00\(index)"
            }
        }
    }
    Benchmark("Protobuf: a consignment of 3 containers serialized") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try consignment.serializedBytes() as [UInt8]) }
    }
    let serialized: [UInt8] = try! consignment.serializedBytes()
    Benchmark("Protobuf: a consignment of 3 containers parsed") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try Consignment_Consignment(serializedBytes: serialized)) }
    }
}

/// A signed token, its forged twin, a verifier of the signing key and a cache over it.
struct TokenFixture: Sendable {
    let token: String
    let forged: String
    let verifier: TokenVerifier
    let cache: VerifiedTokenCache

    init() async throws {
        let signer = await TokenSigner(
            privateKey: ES256PrivateKey(), issuer: "shippy", audience: "shippy", lifetime: .seconds(3600))
        token = try await signer.sign(User(id: "u1", name: "Ann", company: "Acme", email: "ann@example.com"))
        let parts = token.split(separator: ".")
        forged = "\(parts[0]).\(parts[1]).\(String(parts[2].reversed()))"
        verifier = signer.verifier
        cache = VerifiedTokenCache(signer.verifier)
    }
}
