import Foundation
import GRPCCore
import ShippyContracts
import ShippyDomain
import ShippyRuntime
import ShippyStorage

/// The transport of `consignment.ShippingService`: decodes, calls `ConsignmentBooking`, and answers; errors become
/// status codes in `ShippyError+RPC`. Every call carries a token, verified by `AuthInterceptor` before the handler
/// runs, which binds the `Caller`.
///
/// It implements the full `ServiceProtocol` (not the simple one) because it reads the `idempotency-key` metadata.
struct ConsignmentServiceHandler: Consignment_ShippingService.ServiceProtocol {
    let booking: ConsignmentBooking

    /// Books a vessel for the consignment and stores it, owned by the caller (see `ConsignmentBooking`).
    /// - Throws: `unauthenticated` (token), `invalidArgument` (a rule broken, a bad idempotency-key),
    ///   `resourceExhausted` (no vessel has room, with vessel-service's message), `unavailable` /
    ///   `deadlineExceeded` (vessel-service or MongoDB down or slow; safe to retry with the same idempotency-key).
    func createConsignment(
        request: ServerRequest<Consignment_Consignment>,
        context: ServerContext
    ) async throws -> ServerResponse<Consignment_Response> {
        let caller = try AuthInterceptor.requireCaller()
        let key = try IdempotencyKey(request.metadata)
        let booked = try await booking.create(Consignment(request.message), key: key, caller: caller)
        return ServerResponse(
            message: .with {
                $0.created = true
                $0.consignment = Consignment_Consignment(booked)
                $0.consignment.status = .booked
            })
    }

    /// The caller's consignments (booked, and cancelled ones with their status), oldest first, a page at a time.
    /// - Throws: `unauthenticated`, `invalidArgument` (page_size or page_token), `unavailable`.
    func getConsignments(
        request: ServerRequest<Consignment_GetRequest>,
        context: ServerContext
    ) async throws -> ServerResponse<Consignment_Response> {
        let caller = try AuthInterceptor.requireCaller()
        let page = try PageRequest(pageSize: request.message.pageSize, pageToken: request.message.pageToken)
        let consignments = try await booking.consignments(of: caller, page: page)
        return ServerResponse(
            message: .with {
                $0.consignments = consignments.items.map(Consignment_Consignment.init)
                $0.nextPageToken = consignments.nextToken
            })
    }

    /// One consignment by id: the caller's, or anyone's for an admin.
    /// - Throws: `unauthenticated`, `invalidArgument` (a malformed id), `notFound` (no such consignment, or
    ///   another user's), `unavailable`.
    func getConsignment(
        request: ServerRequest<Consignment_ConsignmentRef>,
        context: ServerContext
    ) async throws -> ServerResponse<Consignment_Response> {
        let caller = try AuthInterceptor.requireCaller()
        let record = try await booking.consignment(id: try Self.id(request.message), for: caller)
        return ServerResponse(message: .with { $0.consignment = Consignment_Consignment(record) })
    }

    /// Cancels a booked consignment and gives its room back (see `ConsignmentBooking.cancel`); idempotent.
    /// - Throws: `unauthenticated`, `invalidArgument` (a malformed id), `notFound` (no such consignment, or
    ///   another user's and the caller is no admin), `unavailable` / `deadlineExceeded` (retry: a cancel once
    ///   begun is finished).
    func cancelConsignment(
        request: ServerRequest<Consignment_ConsignmentRef>,
        context: ServerContext
    ) async throws -> ServerResponse<Consignment_Response> {
        let caller = try AuthInterceptor.requireCaller()
        let record = try await booking.cancel(id: try Self.id(request.message), caller: caller)
        return ServerResponse(message: .with { $0.consignment = Consignment_Consignment(record) })
    }

    /// A consignment id as a request names it.
    /// - Throws: `ShippyError` `.invalidArgument` for an empty, over-long or control-character id.
    static func id(_ ref: Consignment_ConsignmentRef) throws(ShippyError) -> String {
        try TextRules.check(ref.id, field: "id", maximumLength: BookingRequest.maximumIDLength)
        return ref.id
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
    /// A consignment as its owner sees it, with where it stands.
    init(_ record: ConsignmentRecord) {
        self.init(record.consignment)
        status =
            switch record.status {
            case .cancelling: .cancelling
            case .cancelled: .cancelled
            case .booked, .pending, .abandoned: .booked
            }
        cancelledBy = record.cancelledBy
    }

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
