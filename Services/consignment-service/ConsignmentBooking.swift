import Foundation
import Logging
import Metrics
import ShippyDomain
import ShippyIdentity
import ShippyStorage

/// The booking of consignments: validation, the idempotency key, Book, Confirm, compensation and recovery,
/// built from the consignment store and the vessel-booking port. The protocol (docs/bookings.md):
///
///     begin (record pending, attempt n) ─▶ quota ─▶ Book(n) ─▶ Confirm(n) ─▶ record booked ─▶ OK
///                                            │ over     │ refused    │ not found, lapsed or released
///                                            ▼          ▼            ▼
///                              record abandoned    Release(n) ─▶ record abandoned ─▶ the error
///
/// The invariant, at every quiescent point: the room taken on each vessel equals what the booked records on it
/// hold, and every consignment answered OK is booked. It holds whatever dies when, because each step is
/// idempotent and conditional on the attempt, a record is booked only after vessel-service confirmed its
/// attempt (a confirmed booking is never released), and abandoned only after vessel-service promised the attempt
/// holds no room and never will. A pending record left by a crash is finished from what is stored: by a retry
/// with the same key or by `recoverStalled()` in any replica, which ask vessel-service instead of guessing.
struct ConsignmentBooking: Sendable {
    let consignments: any ConsignmentRepository
    let vessels: any VesselBooker
    /// How long an attempt may be under way before others presume its call gone and finish it. It bounds how long
    /// room held by a crashed call stays taken (plus one recovery pass); finishing a live attempt is safe, only wasteful.
    let staleAfter: Duration
    let logger: Logger
    /// Milliseconds since 1970.
    var now: @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }
    /// The room one user's open consignments may hold; read at each booking, so it follows the configuration file.
    var quota: @Sendable () -> ConsignmentQuota = { .standard }

    /// `shippy_consignments_created_total` and `shippy_containers_booked_total` (a retry answered from the store
    /// counts once).
    static let created = Counter(label: "shippy_consignments_created_total")
    static let containersBooked = Counter(label: "shippy_containers_booked_total")

    /// How a settled attempt ended.
    enum Outcome: Sendable, Equatable {
        case booked(Consignment)
        case abandoned
    }

    /// Books a vessel for the consignment and stores it, owned by the caller. With a key, a retry (or a
    /// concurrent call) answers the first attempt's outcome once it is final and never books twice. The work runs
    /// to its end even when the caller goes away.
    /// - Throws: `.invalidArgument` (a rule broken), `.resourceExhausted` (no vessel has room, or the caller's
    ///   quota is full), `.unavailable` /
    ///   `.deadlineExceeded` (a dependency down or slow: the outcome may be unknown, retry with the same key),
    ///   `.permissionDenied`, `.unauthenticated` (vessel-service refused the token).
    func create(
        _ consignment: Consignment, key: IdempotencyKey?, caller: Caller
    ) async throws(ShippyError) -> Consignment {
        try consignment.validate()
        let specification = try consignment.specification
        let id = key?.consignmentID(owner: caller.userID) ?? UUID().uuidString.lowercased()
        let proposed = consignment.booked(id: id, vesselID: "", owner: caller.userID)
        // An unstructured task, without the caller's deadline: neither its cancellation nor its deadline may stop
        // a booking between its steps (MongoDB drops the work of a call whose deadline has passed).
        let outcome = await Task { () async -> Result<Consignment, ShippyError> in
            await CallDeadline.$current.withValue(nil) {
                do throws(ShippyError) {
                    return .success(
                        try await book(
                            proposed, specification: specification, contact: caller.contact, credential: caller.token))
                } catch {
                    return .failure(error)
                }
            }
        }.value
        return try outcome.get()
    }

    /// The caller's consignments (booked, and cancelled ones), oldest first, a page at a time.
    func consignments(of caller: Caller, page: PageRequest) async throws(ShippyError) -> Page<ConsignmentRecord> {
        try await consignments.consignments(ownedBy: caller.userID, page: page)
    }

    /// One consignment, its owner's or, for an admin, anyone's.
    /// - Throws: `.notFound` for anyone else, as for an id that is no consignment (an attempt pending or
    ///   abandoned, or none), so that ids cannot be probed; `.unavailable`.
    func consignment(id: String, for caller: Caller) async throws(ShippyError) -> ConsignmentRecord {
        guard let record = try await consignments.record(id: id), record.status.isConsignment,
            record.consignment.userID == caller.userID || caller.claims.isAdmin
        else { throw .notFound("no consignment \(id) of yours") }
        return record
    }

    /// Cancels a booked consignment and gives its room back: its owner's or, forced, an admin's (logged, and
    /// the record keeps who cancelled it). Idempotent: a cancelled consignment is answered as it is. The record
    /// becomes `cancelling` first, so that whatever dies after, the cancel is finished (by a retry or by
    /// recovery), never undone; the work runs to its end even when the caller goes away.
    /// - Throws: `.notFound` (see `consignment(id:for:)`), `.unavailable` / `.deadlineExceeded` (retry: the
    ///   cancel, once begun, is finished either way).
    func cancel(id: String, caller: Caller) async throws(ShippyError) -> ConsignmentRecord {
        let found = try await consignment(id: id, for: caller)
        let outcome = await Task { () async -> Result<ConsignmentRecord, ShippyError> in
            await CallDeadline.$current.withValue(nil) {
                do throws(ShippyError) {
                    return .success(try await cancel(found, caller: caller))
                } catch {
                    return .failure(error)
                }
            }
        }.value
        return try outcome.get()
    }

    /// One recovery pass: settles at most `limit` attempts, and finishes cancels, that have been under way longer
    /// than `staleAfter`. Every replica runs it at start and periodically; racing passes are safe. Returns how
    /// many it settled.
    @discardableResult
    func recoverStalled(limit: Int = 100) async throws(ShippyError) -> Int {
        let stalled = try await consignments.unsettled(startedBefore: now() - staleAfter.milliseconds, limit: limit)
        var settled = 0
        for record in stalled {
            do {
                let outcome: String
                if record.status == .cancelling {
                    _ = try await finishCancel(record, credential: record.credential)
                    outcome = "cancelled"
                } else {
                    outcome =
                        try await settle(record, credential: record.credential) == .abandoned ? "abandoned" : "booked"
                }
                settled += 1
                logger.notice(
                    "recovered a stalled \(record.status == .cancelling ? "cancel" : "booking")",
                    metadata: [
                        "consignment_id": "\(record.id)", "attempt": "\(record.attempt)", "outcome": "\(outcome)",
                    ])
            } catch {
                logger.warning(
                    "a stalled booking or cancel could not be settled yet; the next pass tries again",
                    metadata: ["consignment_id": "\(record.id)", "attempt": "\(record.attempt)", "error": "\(error)"])
            }
        }
        return settled
    }

    // MARK: Steps

    private func book(
        _ consignment: Consignment, specification: VesselSpecification, contact: Contact, credential: String
    ) async throws(ShippyError) -> Consignment {
        // A few rounds: each either starts an attempt, or waits for one under way that then ends abandoned.
        for _ in 0..<3 {
            let (record, started) = try await consignments.begin(
                consignment, contact: contact, credential: credential, now: now())
            if started {
                try await checkQuota(record)
                return try await run(record, specification: specification)
            }
            if case .booked(let booked) = try await outcome(of: record, credential: credential) { return booked }
        }
        throw .unavailable("consignment \(consignment.id) could not be booked after several attempts; retry")
    }

    /// Ends a new attempt that would take its owner's open consignments over the quota. Its record is stored
    /// (pending) before the sum is read, so two racing calls each count the other: both may be refused, never both
    /// taken beyond the quota. Nothing is booked for the attempt yet, and only this call books it, so marking it
    /// abandoned ends it; a crash before that leaves it to recovery, which finds no booking and abandons it.
    private func checkQuota(_ record: ConsignmentRecord) async throws(ShippyError) {
        let held = try await consignments.held(by: record.consignment.userID)
        do {
            try quota().check(held: held, adding: record.consignment.load)
        } catch {
            try await consignments.markAbandoned(id: record.id, attempt: record.attempt)
            logger.notice(
                "booking refused: over the owner's quota",
                metadata: [
                    "consignment_id": "\(record.id)", "user_id": "\(record.consignment.userID)",
                    "held_containers": "\(held.containers)", "held_kg": "\(held.weight)",
                ])
            throw error
        }
    }

    /// Runs a new attempt: Book, then Confirm decides.
    private func run(
        _ record: ConsignmentRecord, specification: VesselSpecification
    ) async throws(ShippyError) -> Consignment {
        var bookingError: ShippyError?
        do {
            let booking = try await vessels.book(
                consignmentID: record.id, attempt: record.attempt, specification: specification,
                credential: record.credential)
            if booking.state == .released { bookingError = Self.givenUp(record) }
        } catch {
            // A refusal took nothing; any other outcome is unknown (vessel-service slow or gone): Confirm tells.
            bookingError = error.code == .failedPrecondition ? Self.givenUp(record) : error
        }
        let outcome =
            if let bookingError, bookingError.isRefusal {
                try await abandon(record, credential: record.credential)
            } else {
                try await settle(record, credential: record.credential)
            }
        switch outcome {
        case .booked(let booked):
            Self.created.increment()
            Self.containersBooked.increment(by: booked.containers.count)
            logger.info(
                "consignment created",
                metadata: [
                    "consignment_id": "\(booked.id)", "vessel_id": "\(booked.vesselID)", "user_id": "\(booked.userID)",
                ])
            return booked
        case .abandoned:
            // Given up or lapsed, the attempt may well succeed when tried again: that is `unavailable`.
            if let bookingError, bookingError.code != .failedPrecondition { throw bookingError }
            throw .unavailable(
                bookingError?.message ?? "the reservation lapsed before it could be confirmed; try again")
        }
    }

    /// Waits for an attempt that another call has under way to end, finishing it once it is stale.
    private func outcome(of record: ConsignmentRecord, credential: String) async throws(ShippyError) -> Outcome {
        var current = record
        var pause = Duration.milliseconds(20)
        while current.status == .pending {
            if now() - current.startedAtMilliseconds >= staleAfter.milliseconds {
                return try await settle(current, credential: credential)
            }
            try? await Task.sleep(for: pause)
            pause = min(pause * 2, .milliseconds(500))
            guard let reread = try await consignments.record(id: record.id) else { return .abandoned }
            current = reread
        }
        switch current.status {
        case .booked: return .booked(current.consignment)
        case .abandoned, .pending: return .abandoned
        case .cancelling, .cancelled:
            throw ShippyError(
                .failedPrecondition,
                "consignment \(record.id) was booked with this idempotency-key and then cancelled; to ship again, "
                    + "use a new key")
        }
    }

    /// Ends a pending attempt from vessel-service's answer to Confirm: booked when it holds a reservation,
    /// abandoned when it never booked or its reservation lapsed. Never guesses: an unknown answer throws and
    /// leaves the record pending for the next try.
    func settle(_ record: ConsignmentRecord, credential: String) async throws(ShippyError) -> Outcome {
        do {
            return try await confirm(record, credential: credential)
        } catch  where error.code == .notFound || error.code == .failedPrecondition {
            return try await abandon(record, credential: credential)
        }
    }

    /// Confirms the attempt's reservation with vessel-service, then marks the record booked.
    private func confirm(_ record: ConsignmentRecord, credential: String) async throws(ShippyError) -> Outcome {
        let booking = try await vessels.confirm(
            consignmentID: record.id, attempt: record.attempt, credential: credential)
        guard
            let booked = try await consignments.markBooked(
                id: record.id, attempt: record.attempt, vesselID: booking.vesselID,
                event: try record.bookedEvent(vesselID: booking.vesselID, at: now()))
        else {
            // Cannot happen under the protocol (a record is abandoned only after its attempt was released, and a
            // confirmed booking is never released); said loudly, since the room is then held by no consignment.
            logger.critical(
                "a booking was confirmed for an attempt no longer pending",
                metadata: ["consignment_id": "\(record.id)", "attempt": "\(record.attempt)"])
            throw ShippyError(.internal, "the booking of consignment \(record.id) is inconsistent")
        }
        return .booked(booked.consignment)
    }

    /// Makes sure the attempt holds no room and never will, then marks it abandoned. When vessel-service answers
    /// that the attempt's booking is confirmed (another call confirmed it meanwhile), it is marked booked.
    private func abandon(_ record: ConsignmentRecord, credential: String) async throws(ShippyError) -> Outcome {
        do {
            try await vessels.release(consignmentID: record.id, attempt: record.attempt, credential: credential)
        } catch  where error.code == .failedPrecondition {
            return try await confirm(record, credential: credential)
        }
        try await consignments.markAbandoned(id: record.id, attempt: record.attempt)
        logger.notice(
            "booking attempt abandoned", metadata: ["consignment_id": "\(record.id)", "attempt": "\(record.attempt)"])
        return .abandoned
    }
}

extension ConsignmentBooking {
    // MARK: Cancelling

    /// Marks a booked record cancelling (durable first), then finishes the cancel; a record already cancelling
    /// (another call's, or one a crash left) is finished with this caller's token.
    private func cancel(_ found: ConsignmentRecord, caller: Caller) async throws(ShippyError) -> ConsignmentRecord {
        var record = found
        if record.status == .booked {
            if let marked = try await consignments.markCancelling(
                id: record.id, cancelledBy: caller.userID, credential: caller.token, now: now())
            {
                record = marked
                Self.cancelled.increment()
                if caller.userID != record.consignment.userID {
                    logger.notice(
                        "consignment cancelled by an admin (forced)",
                        metadata: [
                            "consignment_id": "\(record.id)", "owner_id": "\(record.consignment.userID)",
                            "admin_id": "\(caller.userID)",
                        ])
                }
            } else if let reread = try await consignments.record(id: record.id) {
                record = reread  // Another call marked it first: go on from what is stored.
            }
        }
        guard record.status == .cancelling else { return record }
        return try await finishCancel(record, credential: caller.token)
    }

    /// Gives a cancelling record's room back through vessel-service's `Cancel` (idempotent), then marks the record
    /// cancelled. An unknown outcome throws and leaves it cancelling for the next try.
    func finishCancel(_ record: ConsignmentRecord, credential: String) async throws(ShippyError) -> ConsignmentRecord {
        do {
            _ = try await vessels.cancel(consignmentID: record.id, credential: credential)
        } catch  where error.code == .notFound {
            // vessel-service has no booking for it (a consignment stored before bookings existed): it holds no room.
        }
        try await consignments.markCancelled(id: record.id, event: try record.cancelledEvent(at: now()))
        logger.info(
            "consignment cancelled",
            metadata: ["consignment_id": "\(record.id)", "cancelled_by": "\(record.cancelledBy)"])
        var cancelled = record
        cancelled.status = .cancelled
        cancelled.credential = ""
        return cancelled
    }

    /// `shippy_consignments_cancelled_total`: cancels begun (a retry of one counts once).
    static let cancelled = Counter(label: "shippy_consignments_cancelled_total")

    /// The error of an attempt that vessel-service no longer takes (recovery gave it up while the call was slow).
    static func givenUp(_ record: ConsignmentRecord) -> ShippyError {
        ShippyError(
            .failedPrecondition,
            "the booking of consignment \(record.id) took too long and was given up; try again (same idempotency-key)")
    }
}

extension ShippyError {
    /// vessel-service said no, and took nothing: retrying the same call gets the same answer.
    var isRefusal: Bool {
        switch code {
        case .resourceExhausted, .invalidArgument, .permissionDenied, .unauthenticated, .failedPrecondition: true
        default: false
        }
    }
}
