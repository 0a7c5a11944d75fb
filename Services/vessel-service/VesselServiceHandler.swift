import Foundation
import GRPCCore
import Logging
import ShippyContracts
import ShippyDomain
import ShippyIdentity
import ShippyRuntime
import ShippyStorage

/// The transport of `vessel.VesselService`: maps wire types to domain types and back; the rules live
/// in `ShippyDomain`, storage behind `VesselRepository`, and errors become status codes in `ShippyError+RPC`.
/// `AuthInterceptor` has verified the token of every method but `FindAvailable` before a handler runs.
struct VesselServiceHandler: Vessel_VesselService.SimpleServiceProtocol {
    let repository: any VesselRepository
    /// How long a reservation holds its room unless confirmed.
    let reservationLifetime: Duration
    let logger: Logger

    /// Methods callable without a token: the original contract's read-only query.
    static let publicMethods: Set<MethodDescriptor> = [Vessel_VesselService.Method.FindAvailable.descriptor]

    /// Room is booked, confirmed and released by consignment-service alone, for the consignments it stores: over TLS
    /// a user's token is not enough to call these behind its back.
    static let restricted: [MethodDescriptor: Set<String>] = [
        Vessel_VesselService.Method.Book.descriptor: ["consignment-service"],
        Vessel_VesselService.Method.Confirm.descriptor: ["consignment-service"],
        Vessel_VesselService.Method.Release.descriptor: ["consignment-service"],
        Vessel_VesselService.Method.Cancel.descriptor: ["consignment-service"],
    ]

    /// Returns the smallest available vessel with room left for the specification. Public; reads only.
    /// - Throws: `invalidArgument` for a negative capacity or weight, `resourceExhausted` when no vessel
    ///   has room (the message names the specification), `unavailable` when MongoDB is down.
    func findAvailable(request: Vessel_Specification, context: ServerContext) async throws -> Vessel_Response {
        let specification = try VesselSpecification(capacity: request.capacity, maxWeight: request.maxWeight)
        guard let vessel = try await repository.findAvailable(specification) else {
            throw ShippyError(.resourceExhausted, "no available vessel can take \(specification)")
        }
        return .with { $0.vessel = Vessel_Vessel(vessel, showingOwner: false) }
    }

    /// Registers a vessel owned by the caller, assigning an id when none is given; returns it with `created = true`.
    /// - Throws: `unauthenticated`, `permissionDenied` (not an admin), `invalidArgument` (empty name, control
    ///   characters, capacity or max_weight not above 0), `alreadyExists` (id in use), `unavailable`.
    func create(request: Vessel_Vessel, context: ServerContext) async throws -> Vessel_Response {
        let claims = try AuthInterceptor.requireClaims()
        try claims.requireAdmin(to: "register vessels")
        var vessel = try Vessel(validating: request)
        vessel.ownerID = claims.userID
        try await repository.create(vessel)
        logger.info("vessel created", metadata: ["vessel_id": "\(vessel.id)", "user_id": "\(claims.userID)"])
        return .with {
            $0.vessel = Vessel_Vessel(vessel, showingOwner: true)
            $0.created = true
        }
    }

    /// Reserves room for a consignment on the smallest vessel that has it; idempotent by consignment id and
    /// attempt (an attempt that was released is answered `RELEASED` and takes no room).
    /// - Throws: `unauthenticated`, `invalidArgument`, `resourceExhausted` (no vessel has room),
    ///   `permissionDenied` (the id was booked by another user), `failedPrecondition` (a later attempt
    ///   superseded this one), `unavailable` (retry).
    func book(request: Vessel_BookingRequest, context: ServerContext) async throws -> Vessel_Booking {
        let claims = try AuthInterceptor.requireClaims()
        let booking = try await repository.book(
            try BookingRequest(
                consignmentID: request.consignmentID,
                specification: try VesselSpecification(capacity: request.containers, maxWeight: request.weight),
                ownerID: claims.userID, attempt: request.attempt),
            expiresAt: Self.millisecondsSince1970() + reservationLifetime.milliseconds
        )
        logger.info(
            "booked",
            metadata: [
                "consignment_id": "\(booking.consignmentID)", "vessel_id": "\(booking.vesselID)",
                "state": "\(booking.state)", "user_id": "\(claims.userID)",
            ])
        return Vessel_Booking(booking)
    }

    /// Makes the attempt's reservation final. Idempotent.
    /// - Throws: `unauthenticated`, `permissionDenied` (another user's booking), `notFound`,
    ///   `failedPrecondition` (expired, released or another attempt's: book again), `unavailable`.
    func confirm(request: Vessel_BookingRef, context: ServerContext) async throws -> Vessel_Booking {
        let claims = try await requireOwnBooking(request.consignmentID, attempt: request.attempt)
        let booking = try await repository.confirm(consignmentID: request.consignmentID, attempt: request.attempt)
        logger.info(
            "booking confirmed",
            metadata: [
                "consignment_id": "\(booking.consignmentID)", "attempt": "\(booking.attempt)",
                "user_id": "\(claims.userID)",
            ])
        return Vessel_Booking(booking)
    }

    /// Makes sure the attempt holds no room and never will (its reservation given back, or, for an attempt that
    /// never booked, recorded released). Idempotent.
    /// - Throws: `unauthenticated`, `permissionDenied` (another user's booking), `notFound` (attempt 0 and
    ///   nothing booked), `failedPrecondition` (confirmed bookings are not released), `unavailable`.
    func release(request: Vessel_BookingRef, context: ServerContext) async throws -> Vessel_Booking {
        let claims = try await requireOwnBooking(request.consignmentID, attempt: request.attempt)
        let booking = try await repository.release(
            consignmentID: request.consignmentID, attempt: request.attempt, ownerID: claims.userID)
        logger.info(
            "booking released",
            metadata: ["consignment_id": "\(booking.consignmentID)", "attempt": "\(request.attempt)"])
        return Vessel_Booking(booking)
    }

    /// Cancels the confirmed booking of a cancelled consignment and gives its room back. Idempotent. An admin may
    /// cancel anyone's (a forced cancel, which consignment-service audits).
    /// - Throws: `unauthenticated`, `permissionDenied` (another user's booking), `notFound`, `failedPrecondition`
    ///   (not confirmed), `unavailable`.
    func cancel(request: Vessel_BookingRef, context: ServerContext) async throws -> Vessel_Booking {
        let claims = try await requireOwnBooking(request.consignmentID, attempt: 0)
        let booking = try await repository.cancel(consignmentID: request.consignmentID)
        logger.info(
            "booking cancelled",
            metadata: [
                "consignment_id": "\(booking.consignmentID)", "vessel_id": "\(booking.vesselID)",
                "user_id": "\(claims.userID)",
            ])
        return Vessel_Booking(booking)
    }

    /// The fleet with the room each vessel has left, in id order, a page at a time.
    /// - Throws: `unauthenticated`, `invalidArgument` (page_size or page_token), `unavailable`.
    func list(request: Vessel_ListRequest, context: ServerContext) async throws -> Vessel_Response {
        let claims = try AuthInterceptor.requireClaims()
        let page = try await repository.list(try PageRequest(pageSize: request.pageSize, pageToken: request.pageToken))
        return .with {
            $0.vessels = page.items.map { Vessel_Vessel($0, showingOwner: claims.isAdmin) }
            $0.nextPageToken = page.nextToken
        }
    }

    /// The caller's claims, when the booking of `consignmentID` is theirs (or they are an admin). An attempt
    /// from 1 that booked nothing yet is the caller's to release.
    @discardableResult
    private func requireOwnBooking(_ consignmentID: String, attempt: Int64) async throws -> AccessClaims {
        let claims = try AuthInterceptor.requireClaims()
        try TextRules.check(consignmentID, field: "consignment_id", maximumLength: BookingRequest.maximumIDLength)
        guard attempt >= 0 else { throw ShippyError.invalidArgument("attempt must not be negative") }
        guard let booking = try await repository.booking(consignmentID: consignmentID) else {
            guard attempt > 0 else { throw ShippyError.notFound("no booking for consignment \(consignmentID)") }
            return claims
        }
        try claims.requireOwnerOrAdmin(booking.ownerID, of: "the booking of consignment \(consignmentID)")
        return claims
    }

    static func millisecondsSince1970() -> Int64 {
        Int64(Date().timeIntervalSince1970 * 1000)
    }
}

extension Vessel_Vessel {
    /// The vessel as a caller sees it. Who added it (an admin's user id) is shown to admins only.
    init(_ vessel: Vessel, showingOwner: Bool) {
        self.init()
        id = vessel.id
        name = vessel.name
        capacity = vessel.capacity
        maxWeight = vessel.maxWeight
        available = vessel.available
        ownerID = showingOwner ? vessel.ownerID : ""
        roomCapacity = vessel.roomCapacity
        roomWeight = vessel.roomWeight
    }
}

extension Vessel_Booking {
    init(_ booking: Booking) {
        self.init()
        consignmentID = booking.consignmentID
        vesselID = booking.vesselID
        containers = booking.containers
        weight = booking.weight
        ownerID = booking.ownerID
        expiresAtUnixMs = booking.expiresAtMilliseconds
        attempt = booking.attempt
        state =
            switch booking.state {
            case .reserved: .reserved
            case .confirmed: .confirmed
            case .released: .released
            case .cancelled: .cancelled
            }
    }
}

extension Vessel {
    /// A new vessel from a request, all its room free: the id is generated when empty; the rules of
    /// `validate()` apply; the owner is the server's to set.
    init(validating proto: Vessel_Vessel) throws(ShippyError) {
        self.init(
            id: proto.id.isEmpty ? UUID().uuidString.lowercased() : proto.id,
            name: proto.name.trimmingCharacters(in: .whitespacesAndNewlines),
            capacity: proto.capacity,
            maxWeight: proto.maxWeight,
            available: true
        )
        try validate()
    }
}
