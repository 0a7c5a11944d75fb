import Foundation
import GRPCCore
import ShippyContracts
import ShippyDomain
import ShippyMongo
import ShippyStorage
import ShippyTestSupport
import Testing

/// Bookings through real processes: two consignment-service and two vessel-service replicas over one real
/// MongoDB-compatible server, every call over real sockets.
@Suite(.timeLimit(.minutes(3)), .dropsItsDatabases) struct BookingConcurrencyTests {
    @Test func twoHundredConcurrentBookingsForRoomForOneHundredFiftyBookExactlyOneHundredFifty() async throws {
        let system = try ShippySystem()
        try await system.storeFleet([Vessel(id: "only", name: "The Only One", capacity: 150, maxWeight: 1_000_000)])
        let vessels = [try system.startVessel(), try system.startVessel()]
        // The 400 bookings and confirmations all write one vessel's document, which the MongoDB-compatible test
        // server applies one at a time: beside the other end-to-end tests that queue outlasted the default 5 s
        // vessel timeout in some runs. The test's subject is the count, so the timeout is the caller's 60 s.
        let patient = ["VESSEL_TIMEOUT": "60"]
        let consignments = [
            try system.startConsignment(vessel: vessels[0], extra: patient),
            try system.startConsignment(vessel: vessels[1], extra: patient),
        ]
        let everything = vessels + consignments
        do {
            for service in everything { try await service.waitUntilServing() }
            let shippers = (0..<4).map { TestKeys.user("Shipper\($0)") }
            var tokens: [Metadata] = []
            for shipper in shippers { tokens.append(try await system.keys.bearer(shipper)) }
            let request = Consignment_Consignment.with {
                $0.description_p = "One container"
                $0.weight = 100
                $0.containers = [
                    .with {
                        $0.customerID = "cust"; $0.origin = "Felixstowe"
                    }
                ]
            }
            let outcomes = try await consignments[0].withClient { first in
                try await consignments[1].withClient { second in
                    let clients = [first, second].map { Consignment_ShippingService.Client(wrapping: $0) }
                    let tokenList = tokens
                    return await withTaskGroup(of: String.self) { group in
                        for index in 0..<200 {
                            group.addTask {
                                var options = CallOptions.defaults
                                options.timeout = .seconds(60)
                                do {
                                    let created = try await clients[index % 2].createConsignment(
                                        request, metadata: tokenList[index % tokenList.count], options: options)
                                    return created.consignment.vesselID == "only" ? "ok" : "wrong vessel"
                                } catch let error as RPCError {
                                    return "\(error.code)"
                                } catch {
                                    return "\(error)"
                                }
                            }
                        }
                        var outcomes: [String: Int] = [:]
                        for await outcome in group { outcomes[outcome, default: 0] += 1 }
                        return outcomes
                    }
                }
            }
            print("200 concurrent bookings through 2+2 replicas: \(outcomes)")
            #expect(outcomes == ["ok": 150, "resourceExhausted": 50])

            let (stored, containers, room, confirmed, holds) = try await system.withMongo { mongo in
                let stored = try await mongo.find(
                    in: MongoConsignmentRepository.collection, filter: ["status": "booked"])
                let containers = stored.reduce(0) { total, document in
                    if case .array(let items)? = document["containers"] { return total + items.count }
                    return total
                }
                let vessel = try #require(try await mongo.find(in: MongoVesselRepository.collection, filter: [:]).first)
                let confirmed = try await mongo.count(
                    in: MongoVesselRepository.bookings, filter: ["state": "confirmed"])
                let holds: Int = if case .array(let items)? = vessel["holds"] { items.count } else { -1 }
                return (stored.count, containers, vessel["room_capacity"]?.int32Value, confirmed, holds)
            }
            #expect(stored == 150 && containers == 150, "stored consignments hold the booked containers")
            #expect(room == 0, "the vessel's booked room (150 − room left) equals the stored containers")
            #expect(confirmed == 150 && holds == 150)
        } catch {
            await ShippySystem.stopAll(everything)
            throw error
        }
        await ShippySystem.stopAll(everything)
    }
}
