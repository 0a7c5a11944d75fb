import Foundation
import GRPCCore
import Logging
import ShippyContracts
import ShippyDomain
import ShippyStorage

/// The transport of `vessel.VesselService`: maps wire types to domain types and back; the rules live
/// in `ShippyDomain`, storage behind `VesselRepository`, and errors become status codes in `ShippyError+RPC`.
struct VesselServiceHandler: Vessel_VesselService.SimpleServiceProtocol {
    let repository: any VesselRepository
    let logger: Logger

    /// Returns the smallest available vessel that can carry the specification.
    /// - Throws: `invalidArgument` for a negative capacity or weight, `resourceExhausted` when no vessel
    ///   fits (the message names the specification), `unavailable` when MongoDB is down.
    func findAvailable(request: Vessel_Specification, context: ServerContext) async throws -> Vessel_Response {
        let specification = try VesselSpecification(capacity: request.capacity, maxWeight: request.maxWeight)
        guard let vessel = try await repository.findAvailable(specification) else {
            throw ShippyError(.resourceExhausted, "no available vessel can take \(specification)")
        }
        return .with { $0.vessel = Vessel_Vessel(vessel) }
    }

    /// Registers a vessel, assigning an id when none is given; returns it with `created = true`.
    /// - Throws: `invalidArgument` for an empty name or a capacity or max_weight not above 0,
    ///   `alreadyExists` for an id in use, `unavailable` when MongoDB is down.
    func create(request: Vessel_Vessel, context: ServerContext) async throws -> Vessel_Response {
        let vessel = try Vessel(validating: request)
        try await repository.create(vessel)
        logger.info("vessel created", metadata: ["vessel_id": "\(vessel.id)"])
        return .with {
            $0.vessel = Vessel_Vessel(vessel)
            $0.created = true
        }
    }
}

extension Vessel_Vessel {
    init(_ vessel: Vessel) {
        self.init()
        id = vessel.id
        name = vessel.name
        capacity = vessel.capacity
        maxWeight = vessel.maxWeight
        available = vessel.available
        ownerID = vessel.ownerID
    }
}

extension Vessel {
    /// A new vessel from a request: the id is generated when empty; the rules of `validate()` apply.
    init(validating proto: Vessel_Vessel) throws(ShippyError) {
        self.init(
            id: proto.id.isEmpty ? UUID().uuidString.lowercased() : proto.id,
            name: proto.name.trimmingCharacters(in: .whitespacesAndNewlines),
            capacity: proto.capacity,
            maxWeight: proto.maxWeight,
            available: proto.available,
            ownerID: proto.ownerID
        )
        try validate()
    }
}
