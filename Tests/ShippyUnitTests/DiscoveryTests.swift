import GRPCCore
import GRPCNIOTransportHTTP2
import ShippyConfiguration
import ShippyContracts
import Synchronization
import Testing

@testable import ShippyDiscovery

@Suite struct DiscoveryTests {
    @Test(arguments: ["dns:///vessel:50052", "vessel:50052"])
    func aNameIsDiscoveredWithOrWithoutTheScheme(address: String) throws {
        let target = try #require(try ServiceAddress.target(address, key: "VESSEL_SERVICE_ADDRESS") as? DiscoveredName)
        #expect(target.host == "vessel")
        #expect(target.port == 50052)
        #expect(target.refresh == DiscoveredName.refreshInterval)
    }

    @Test func anIPAddressIsUsedAsItIs() throws {
        let target = try ServiceAddress.target("127.0.0.1:50052", key: "VESSEL_SERVICE_ADDRESS")
        #expect(target is ResolvableTargets.IPv4)
    }

    @Test func aListOfAddressesIsOneTargetWithEveryReplica() throws {
        let target = try ServiceAddress.target("127.0.0.1:50152,127.0.0.1:50252", key: "VESSEL_SERVICE_ADDRESS")
        let list = try #require(target as? ResolvableTargets.IPv4)
        #expect(list.addresses == [.init(host: "127.0.0.1", port: 50152), .init(host: "127.0.0.1", port: 50252)])
    }

    @Test(arguments: ["127.0.0.1:1,vessel:2", "127.0.0.1:1,", "127.0.0.1:1,[::1]:2"])
    func aListHoldsOnlyIPv4Addresses(address: String) {
        #expect(throws: ConfigurationError.self) { try ServiceAddress.target(address, key: "VESSEL_SERVICE_ADDRESS") }
    }

    /// Each address of the name is an endpoint of its own: that is what lets round-robin spread the calls.
    @Test(.timeLimit(.minutes(1)))
    func everyAddressOfANameIsAnEndpointOfItsOwn() async throws {
        var lookups = Lookups(target: DiscoveredName(host: "localhost", port: 50052)).makeAsyncIterator()
        let result = try #require(try await lookups.next())
        let addresses = result.endpoints.flatMap(\.addresses)
        #expect(result.endpoints.allSatisfy { $0.addresses.count == 1 })
        #expect(addresses.contains(.ipv4(host: "127.0.0.1", port: 50052)))
        #expect(Set(addresses).count == addresses.count)
    }

    @Test(.timeLimit(.minutes(1)))
    func aNameThatDoesNotResolveFailsTheFirstLookUpNamingIt() async throws {
        var lookups = Lookups(target: DiscoveredName(host: "no-such-host.invalid", port: 1)).makeAsyncIterator()
        let error = await #expect(throws: RPCError.self) { try await lookups.next() }
        #expect(error?.code == .unavailable)
        #expect(error?.message.contains("no-such-host.invalid") == true)
    }

    /// The closed-connection signal wakes the resolver early, but not before a second has passed.
    @Test(.timeLimit(.minutes(1)))
    func aClosedConnectionBringsTheNextLookUpForward() async throws {
        let name = DiscoveredName(host: "localhost", port: 50052, refresh: .seconds(60))
        var lookups = Lookups(target: name).makeAsyncIterator()
        _ = try await lookups.next()
        name.lookUpSoon.raise()
        let start = ContinuousClock.now
        _ = try await lookups.next()
        let waited = ContinuousClock.now - start
        #expect(waited >= .seconds(1))
        #expect(waited < .seconds(30))
    }

    /// With no server to reach, a retried call fails once its attempts are spent, not at its deadline (five
    /// minutes here, past the test's limit): grpc-swift's retry executor waits for the deadline when the
    /// transport throws, so ServiceTransport answers with the status instead.
    @Test(.timeLimit(.minutes(1)))
    func aRetriedCallToNoServerFailsWithoutWaitingForItsDeadline() async throws {
        let transport = try ServiceTransport(
            main: .ipv4(address: "127.0.0.1", port: 1), serviceConfig: RetryPolicies.serviceConfig())
        var options = CallOptions.defaults
        options.timeout = .seconds(300)
        let error = try await withGRPCClient(transport: transport) { client in
            await #expect(throws: RPCError.self) {
                try await Grpc_Health_V1_Health.Client(wrapping: client).check(.init(), options: options)
            }
        }
        #expect(error?.code == .unavailable)
    }

    @Test func theCanaryGetsExactlyItsShareAndFollowsAChange() {
        let percent = Atomic<Int>(10)
        let split = CanarySplit(share: { Double(percent.load(ordering: .relaxed)) / 100 })
        #expect((0..<2000).count { _ in split.takesCall() } == 200)
        percent.store(25, ordering: .relaxed)
        #expect((0..<1000).count { _ in split.takesCall() } == 250)
        percent.store(0, ordering: .relaxed)
        #expect((0..<1000).count { _ in split.takesCall() } == 0)
    }

    @Test func onlyIdempotentMethodsAreRetried() throws {
        let names = Set(RetryPolicies.retryable.map { "\($0.service)/\($0.method)" })
        for method in ["vessel.VesselService/Create", "user.UserService/Create", "user.UserService/Auth"] {
            #expect(!names.contains(method), "\(method) is not idempotent")
        }
        #expect(names.contains("vessel.VesselService/Book"))
        #expect(names.contains("consignment.ShippingService/CreateConsignment"))
        let config = RetryPolicies.serviceConfig()
        #expect(config.retryThrottling != nil)
        let policy = try #require(config.methodConfig.last?.executionPolicy?.retry)
        #expect(policy.retryableStatusCodes == [.unavailable])
    }

    /// A method the caller configures keeps the caller's settings rather than the shared policy's.
    @Test func aCallersOwnMethodConfigWins() {
        let auth = MethodConfig.Name(service: "vessel.VesselService", method: "Book")
        let config = RetryPolicies.serviceConfig([MethodConfig(names: [auth], timeout: .seconds(1))])
        #expect(config.methodConfig.filter { $0.names.contains(auth) }.count == 1)
        #expect(config.methodConfig.first?.timeout == .seconds(1))
    }
}
