import ShippyConfiguration
import ShippyRuntime
import Testing

/// Whose word about a client's address is taken: a service's trusted gateways, the gateway's trusted proxies.
@Suite struct ClientAddressTests {
    @Test func addressesAndNetworksContainWhatTheySay() throws {
        let set = try AddressSet(["127.0.0.1", " 10.0.0.0/8", "fd00::/8", "::1", "192.168.1.128/25"])
        for inside in ["127.0.0.1", "10.255.0.3", "fd12::5", "::1", "::ffff:10.1.2.3", "192.168.1.200"] {
            #expect(set.contains(inside), "\(inside)")
        }
        for outside in [
            "127.0.0.2", "11.0.0.1", "fe80::1", "::2", "192.168.1.127", "not an address", "", "10.0.0.1:80",
        ] {
            #expect(!set.contains(outside), "\(outside)")
        }
        #expect(!AddressSet().contains("127.0.0.1"), "nobody's word by default")
        #expect(try AddressSet(["0.0.0.0/0"]).contains("203.0.113.9"))
        for bad in ["10.0.0.0/33", "fd00::/129", "example.com", "10.0.0/8", "10.0.0.0/x"] {
            #expect(throws: SettingProblem.self, "\(bad)") { try AddressSet([bad]) }
        }
    }

    @Test func thePeerOfACallIsItsAddress() {
        #expect(ClientAddress.host(ofPeer: "ipv4:127.0.0.1:5000") == "127.0.0.1")
        #expect(ClientAddress.host(ofPeer: "ipv6:[::1]:5000") == "::1")
        #expect(ClientAddress.host(ofPeer: "[2001:db8::1]:4711") == "2001:db8::1")
        #expect(ClientAddress.host(ofPeer: "2001:db8::1") == "2001:db8::1")
        #expect(ClientAddress.host(ofPeer: "192.0.2.60") == "192.0.2.60")
    }

    @Test func aServiceTakesTheGatewaysWordOnlyFromATrustedGateway() throws {
        let gateways = try AddressSet(["10.0.0.5"])
        #expect(ClientAddress.resolve(peer: "10.0.0.5", sent: "203.0.113.7", trusted: gateways) == "203.0.113.7")
        #expect(ClientAddress.resolve(peer: "10.0.0.6", sent: "203.0.113.7", trusted: gateways) == "10.0.0.6")
        #expect(ClientAddress.resolve(peer: "10.0.0.5", sent: "not an address", trusted: gateways) == "10.0.0.5")
        #expect(ClientAddress.resolve(peer: "10.0.0.5", sent: nil, trusted: gateways) == "10.0.0.5")
    }

    @Test func overTLSTheGatewayIsWhoItsCertificateNamesWhereverItCallsFrom() throws {
        let gateways = try AddressSet(["10.0.0.5"])
        func client(_ peer: String, _ identity: String) -> String {
            ClientAddress.resolve(peer: peer, identity: identity, sent: "203.0.113.7", trusted: gateways)
        }
        #expect(client("10.0.0.9", "api-gateway") == "203.0.113.7")
        #expect(client("10.0.0.5", "consignment-cli") == "10.0.0.5")
        #expect(client("10.0.0.5", "") == "10.0.0.5")
    }

    @Test func behindProxiesTheClientIsTheNearestHopThatIsNoProxy() throws {
        let proxies = try AddressSet(["10.0.0.0/8"])
        func client(_ peer: String, forwarded: [String] = [], forwardedFor: [String] = []) -> String {
            ClientAddress.behindProxies(peer: peer, forwarded: forwarded, forwardedFor: forwardedFor, trusted: proxies)
        }
        // Anyone else's headers are not believed.
        #expect(client("203.0.113.7", forwardedFor: ["198.51.100.1"]) == "203.0.113.7")
        #expect(client("10.0.0.1") == "10.0.0.1")
        // A client's own spoofed hop at the left is not believed either: the nearest untrusted hop is.
        #expect(client("10.0.0.1", forwardedFor: ["1.2.3.4, 198.51.100.1", "10.0.0.2"]) == "198.51.100.1")
        #expect(client("10.0.0.1", forwardedFor: ["10.0.0.3, 10.0.0.2"]) == "10.0.0.3")
        #expect(client("10.0.0.1", forwardedFor: ["garbage, 10.0.0.2"]) == "10.0.0.2")
        #expect(
            client(
                "10.0.0.1", forwarded: [#"for="[2001:db8::1]:4711";proto=https, for=10.0.0.2"#],
                forwardedFor: ["9.9.9.9"])
                == "2001:db8::1", "Forwarded wins over X-Forwarded-For")
        #expect(client("10.0.0.1", forwarded: ["for=192.0.2.60;proto=http;by=203.0.113.43"]) == "192.0.2.60")
    }
}
