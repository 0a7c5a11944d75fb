import Foundation
import GRPCCore
import Logging
import Metrics
import ShippyContracts
import ShippyDomain
import ShippyRuntime
import ShippyStorage

/// The transport of `consignment.ShippingService`. Every call carries a token, verified by `AuthInterceptor`
/// before the handler runs; the token's user owns what is created and sees only what they own.
///
/// It implements the full `ServiceProtocol` (not the simple one) because it reads request metadata: the
/// caller's token, forwarded to vessel-service, and the `idempotency-key`.
struct ConsignmentServiceHandler: Consignment_ShippingService.ServiceProtocol {
    let repository: any ConsignmentRepository
    let vessels: any VesselBooker
    let logger: Logger

    /// `shippy_consignments_created_total` and `shippy_containers_booked_total` (a retry answered from the store
    /// counts once).
    static let created = Counter(label: "shippy_consignments_created_total")
    static let containersBooked = Counter(label: "shippy_containers_booked_total")

    /// Books a vessel for the consignment and stores it, owned by the caller: the booking saga of the README
    /// (Book, store, Confirm; on a failure after Book, the store is undone and the room released).
    /// - Throws: `unauthenticated` (token), `invalidArgument` (a rule broken, a bad idempotency-key),
    ///   `resourceExhausted` (no vessel has room, with vessel-service's message), `unavailable` /
    ///   `deadlineExceeded` (vessel-service or MongoDB down or slow; safe to retry with the same idempotency-key).
    func createConsignment(
        request: ServerRequest<Consignment_Consignment>,
        context: ServerContext
    ) async throws -> ServerResponse<Consignment_Response> {
        let owner = try AuthInterceptor.requireClaims().userID
        let token = try AuthInterceptor.token(in: request.metadata)
        let consignment = Consignment(request.message)
        try consignment.validate()
        let key = try IdempotencyKey(request.metadata)
        let id = key?.consignmentID(owner: owner) ?? UUID().uuidString.lowercased()
        if key != nil, let stored = try await repository.consignment(id: id) {
            // A retry of a call that got as far as storing: make sure its booking is final, answer the first result.
            try await confirmOrUndo(stored, token: token)
            return Self.response(stored)
        }
        let vesselID = try await vessels.book(
            consignmentID: id, specification: try consignment.specification, token: token)
        let booked = consignment.booked(id: id, vesselID: vesselID, owner: owner)
        do {
            try await repository.create(booked)
        } catch  where error.code == .alreadyExists && key != nil {
            // A concurrent retry with the same key stored it first; confirming below is idempotent.
        } catch {
            await releaseQuietly(id, token: token, reason: "storing it failed")
            throw error
        }
        try await confirmOrUndo(booked, token: token)
        Self.created.increment()
        Self.containersBooked.increment(by: booked.containers.count)
        logger.info(
            "consignment created",
            metadata: ["consignment_id": "\(booked.id)", "vessel_id": "\(vesselID)", "user_id": "\(owner)"])
        return Self.response(booked)
    }

    /// The caller's consignments, oldest first, a page at a time.
    /// - Throws: `unauthenticated`, `invalidArgument` (page_size or page_token), `unavailable`.
    func getConsignments(
        request: ServerRequest<Consignment_GetRequest>,
        context: ServerContext
    ) async throws -> ServerResponse<Consignment_Response> {
        let owner = try AuthInterceptor.requireClaims().userID
        let page = try PageRequest(pageSize: request.message.pageSize, pageToken: request.message.pageToken)
        let consignments = try await repository.consignments(ownedBy: owner, page: page)
        return ServerResponse(
            message: .with {
                $0.consignments = consignments.items.map(Consignment_Consignment.init)
                $0.nextPageToken = consignments.nextToken
            })
    }

    /// Confirms the booking of a stored consignment. When that fails, the consignment is deleted and its room
    /// released, so that no stored consignment is left whose room the sweep would give away.
    private func confirmOrUndo(_ consignment: Consignment, token: String) async throws(ShippyError) {
        do {
            try await vessels.confirm(consignmentID: consignment.id, token: token)
        } catch {
            do {
                try await repository.delete(id: consignment.id)
            } catch let deleteError {
                logger.error(
                    "a consignment is stored but its booking could not be confirmed, nor the consignment deleted",
                    metadata: ["consignment_id": "\(consignment.id)", "error": "\(deleteError)"])
            }
            await releaseQuietly(consignment.id, token: token, reason: "confirming it failed")
            if error.code == .failedPrecondition {
                throw .unavailable("the booking expired before it could be confirmed; try again")
            }
            throw error
        }
    }

    /// Releases a booking after a failed step; when the release fails too, the sweep frees the room once
    /// the reservation expires.
    private func releaseQuietly(_ consignmentID: String, token: String, reason: String) async {
        do {
            try await vessels.release(consignmentID: consignmentID, token: token)
            logger.notice("booking released", metadata: ["consignment_id": "\(consignmentID)", "reason": "\(reason)"])
        } catch {
            logger.warning(
                "booking not released; the sweep releases it when the reservation expires",
                metadata: ["consignment_id": "\(consignmentID)", "reason": "\(reason)", "error": "\(error)"])
        }
    }

    private static func response(_ consignment: Consignment) -> ServerResponse<Consignment_Response> {
        ServerResponse(
            message: .with {
                $0.created = true
                $0.consignment = Consignment_Consignment(consignment)
            })
    }
}

extension Consignment {
    /// A consignment as a client sent it; ids, vessel and owner are the server's to set.
    init(_ proto: Consignment_Consignment) {
        self.init(
            description: proto.description_p.trimmingCharacters(in: .whitespaces),
            weight: proto.weight,
            containers: proto.containers.map { container in
                Container(
                    id: container.id,
                    customerID: container.customerID.trimmingCharacters(in: .whitespaces),
                    origin: container.origin.trimmingCharacters(in: .whitespaces)
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
