import Foundation
import GRPCCore
import Logging
import ShippyContracts
import ShippyDomain
import ShippyRuntime
import ShippyStorage

/// The transport of `consignment.ShippingService`. Every call carries a token, verified by `AuthInterceptor`
/// before the handler runs; the token's user owns what is created and sees only what they own.
struct ConsignmentServiceHandler: Consignment_ShippingService.SimpleServiceProtocol {
    let repository: any ConsignmentRepository
    let vessels: any VesselFinder
    let logger: Logger

    /// Books a vessel for the consignment and stores it, owned by the caller.
    /// - Throws: `unauthenticated` (token), `invalidArgument` (a rule broken), `resourceExhausted` (no vessel
    ///   can take it, with vessel-service's message), `unavailable` / `deadlineExceeded` (vessel-service or
    ///   MongoDB down or slow).
    func createConsignment(request: Consignment_Consignment, context: ServerContext) async throws -> Consignment_Response {
        let owner = try AuthInterceptor.requireClaims().userID
        let consignment = Consignment(request)
        try consignment.validate()
        let vesselID = try await vessels.findAvailable(try consignment.specification)
        let booked = consignment.booked(id: UUID().uuidString.lowercased(), vesselID: vesselID, owner: owner)
        try await repository.create(booked)
        logger.info(
            "consignment created",
            metadata: ["consignment_id": "\(booked.id)", "vessel_id": "\(vesselID)", "user_id": "\(owner)"])
        return .with {
            $0.created = true
            $0.consignment = Consignment_Consignment(booked)
        }
    }

    /// The caller's consignments.
    /// - Throws: `unauthenticated`, `unavailable`.
    func getConsignments(request: Consignment_GetRequest, context: ServerContext) async throws -> Consignment_Response {
        let owner = try AuthInterceptor.requireClaims().userID
        let consignments = try await repository.consignments(ownedBy: owner)
        return .with { $0.consignments = consignments.map(Consignment_Consignment.init) }
    }
}

extension Consignment {
    /// A consignment as a client sent it; ids, vessel and owner are the server's to set.
    init(_ proto: Consignment_Consignment) {
        self.init(
            description: proto.description_p.trimmingCharacters(in: .whitespacesAndNewlines),
            weight: proto.weight,
            containers: proto.containers.map { container in
                Container(
                    id: container.id,
                    customerID: container.customerID.trimmingCharacters(in: .whitespacesAndNewlines),
                    origin: container.origin.trimmingCharacters(in: .whitespacesAndNewlines)
                )
            }
        )
    }
}

extension Consignment_Consignment {
    init(_ consignment: Consignment) {
        self.init()
        id = consignment.id
        description_p = consignment.description
        weight = consignment.weight
        vesselID = consignment.vesselID
        userID = consignment.userID
        containers = consignment.containers.map { container in
            .with {
                $0.id = container.id
                $0.customerID = container.customerID
                $0.origin = container.origin
                $0.userID = container.userID
            }
        }
    }
}
