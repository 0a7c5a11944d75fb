import ShippyDomain
import ShippyStorage
import ShippyTestSupport
import Testing

@Suite struct VesselDomainTests {
    @Test(arguments: [
        (Vessel(id: "v", name: "  ", capacity: 1, maxWeight: 1), "name must not be empty"),
        (Vessel(id: "v", name: "Tug", capacity: 0, maxWeight: 1), "capacity must be greater than 0 (got 0)"),
        (Vessel(id: "v", name: "Tug", capacity: 1, maxWeight: -5), "max_weight must be greater than 0 (got -5)"),
        (Vessel(id: String(repeating: "x", count: 129), name: "Tug", capacity: 1, maxWeight: 1), "id must be at most"),
        (Vessel(id: "a b", name: "Tug", capacity: 1, maxWeight: 1), "vessel id may hold only ASCII letters"),
    ])
    func invalidVesselNamesTheBrokenRule(vessel: Vessel, expected: String) {
        #expect {
            try vessel.validate()
        } throws: { error in
            let error = error as? ShippyError
            return error?.code == .invalidArgument && error?.message.contains(expected) == true
        }
    }

    @Test func negativeSpecificationIsInvalidArgument() {
        #expect(throws: ShippyError.invalidArgument("specification capacity must not be negative (got -1)")) {
            try VesselSpecification(capacity: -1, maxWeight: 0)
        }
        #expect(throws: ShippyError.invalidArgument("specification max_weight must not be negative (got -2)")) {
            try VesselSpecification(capacity: 0, maxWeight: -2)
        }
    }

    @Test func defaultFleetTakesTheSampleConsignmentOnItsSmallestFittingVessel() async throws {
        let repository = InMemoryVesselRepository(Vessel.defaultFleet)
        let vessel = try await repository.findAvailable(try VesselSpecification(capacity: 3, maxWeight: 55_000))
        #expect(vessel?.id == "vessel003")
    }

    @Test func unavailableVesselsAreNeverChosen() async throws {
        let repository = InMemoryVesselRepository([
            Vessel(id: "busy", name: "Busy", capacity: 10, maxWeight: 10, available: false),
            Vessel(id: "free", name: "Free", capacity: 20, maxWeight: 20),
        ])
        let vessel = try await repository.findAvailable(try VesselSpecification(capacity: 5, maxWeight: 5))
        #expect(vessel?.id == "free")
    }

    @Test func seedingTwiceInsertsTheFleetOnce() async throws {
        let repository = InMemoryVesselRepository()
        #expect(try await repository.seedIfEmpty(Vessel.defaultFleet) == Vessel.defaultFleet.count)
        #expect(try await repository.seedIfEmpty(Vessel.defaultFleet) == 0)
    }
}
