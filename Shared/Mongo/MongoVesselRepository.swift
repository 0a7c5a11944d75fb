import Foundation
import ShippyDomain
import ShippyStorage

/// Vessels in the MongoDB collection `vessels` (the vessel id as `_id`), their bookings in `bookings`
/// (the consignment id as `_id`).
///
/// The room left on a vessel (`room_capacity`, `room_weight`) and the holds taken from it live in the vessel's
/// own document, so that taking room is one atomic conditional update whose filter requires the room:
/// concurrent bookings through any number of replicas cannot overbook. The booking entry, unique by
/// consignment id, makes `book` idempotent and records the saga's state:
///
///     pending ──(room taken)──▶ reserved ──confirm──▶ confirmed ──cancel──▶ cancelled ─┐
///        │                          │                                                   ├─(room given back)─▶ freed
///        └──(no room: deleted)      └──release / expired (sweep)──▶ released ──────────┘
///
/// Each hold carries a token of its own, so giving its room back is idempotent too, and a crash between any
/// two steps leaves an entry that the sweep (`releaseExpired`) finishes. The entry also records the attempt
/// (consignment-service's attempt at booking the consignment) that holds it: every step names its attempt,
/// and a step of an attempt that is not the entry's changes nothing (`BookingRequest.takesRoomAnew`).
public struct MongoVesselRepository: VesselRepository {
    public static let collection = "vessels"
    public static let bookings = "bookings"
    private let client: MongoClient

    public init(client: MongoClient) {
        self.client = client
    }

    /// Creates the indexes, and gives vessels stored before bookings existed their room fields. Idempotent.
    public func prepare() async throws(ShippyError) {
        try await client.createIndexes(
            [
                .init(
                    name: "available_capacity_max_weight",
                    keys: ["available": .int32(1), "capacity": .int32(1), "max_weight": .int32(1)]
                )
            ],
            on: Self.collection
        )
        try await client.createIndexes(
            [.init(name: "state_expires_at", keys: ["state": .int32(1), "expires_at": .int32(1)])], on: Self.bookings)
        // Entries made before attempts existed belong to attempt 0, the attempt of clients that predate them.
        try await client.updateMany(
            in: Self.bookings, filter: ["attempt": ["$exists": .bool(false)]], update: ["$set": ["attempt": .int64(0)]])
        let unmigrated = try await client.find(
            in: Self.collection, filter: ["room_capacity": ["$exists": .bool(false)]])
        for document in unmigrated {
            let vessel = try Vessel(document)
            try await client.updateOne(
                in: Self.collection,
                filter: ["_id": .string(vessel.id), "room_capacity": ["$exists": .bool(false)]],
                update: [
                    "$set": [
                        "room_capacity": .int32(vessel.capacity), "room_weight": .int32(vessel.maxWeight),
                        "holds": .array([]),
                    ]
                ]
            )
        }
    }

    public func findAvailable(_ specification: VesselSpecification) async throws(ShippyError) -> Vessel? {
        let documents = try await client.find(
            in: Self.collection, filter: Self.hasRoom(for: specification), sort: Self.smallestFirst, limit: 1,
            projection: Self.withoutHolds)
        return try documents.first.map { fields throws(ShippyError) in try Vessel(fields) }
    }

    public func create(_ vessel: Vessel) async throws(ShippyError) {
        do {
            try await client.insertOne(BSONFields(vessel), into: Self.collection)
        } catch  where error.code == .alreadyExists {
            throw .alreadyExists("a vessel with id \(vessel.id) already exists")
        }
    }

    public func seedIfEmpty(_ fleet: [Vessel]) async throws(ShippyError) -> Int {
        guard try await client.count(in: Self.collection) == 0 else { return 0 }
        var inserted = 0
        for vessel in fleet {
            do {
                try await client.insertOne(BSONFields(vessel), into: Self.collection)
                inserted += 1
            } catch  where error.code == .alreadyExists {
                // Another replica seeded this vessel first; the fixed id keeps it to one copy.
            }
        }
        return inserted
    }

    public func list(_ page: PageRequest) async throws(ShippyError) -> Page<Vessel> {
        let filter: BSONFields = page.cursor.first.map { ["_id": ["$gt": .string($0)]] } ?? [:]
        let documents = try await client.find(
            in: Self.collection, filter: filter, sort: ["_id": .int32(1)], limit: Int64(page.size + 1),
            projection: Self.withoutHolds)
        var vessels: [Vessel] = []
        for document in documents { vessels.append(try Vessel(document)) }
        return Page(fetched: vessels, size: page.size) { [$0.id] }
    }

    // MARK: Bookings

    public func booking(consignmentID: String) async throws(ShippyError) -> Booking? {
        try await entry(consignmentID)?.booking
    }

    public func book(_ request: BookingRequest, expiresAt: Int64) async throws(ShippyError) -> Booking {
        let hold = UUID().uuidString.lowercased()
        if let existing = try await claim(request, hold: hold, expiresAt: expiresAt) { return existing }
        let load = request.specification
        let taken = try await client.findOneAndUpdate(
            in: Self.collection,
            filter: Self.hasRoom(for: load),
            update: [
                "$inc": ["room_capacity": .int32(-load.capacity), "room_weight": .int32(-load.maxWeight)],
                "$push": [
                    "holds": [
                        "hold": .string(hold), "containers": .int32(load.capacity), "weight": .int32(load.maxWeight),
                    ]
                ],
            ],
            sort: Self.smallestFirst,
            projection: Self.withoutHolds
        )
        guard let taken else {
            try await client.deleteMany(
                in: Self.bookings, filter: ["_id": .string(request.consignmentID), "hold": .string(hold)])
            throw .resourceExhausted("no vessel has room for \(load.capacity) containers and \(load.maxWeight) kg")
        }
        let vessel = try Vessel(taken)
        let marked = try await client.updateOne(
            in: Self.bookings,
            filter: ["_id": .string(request.consignmentID), "hold": .string(hold), "state": "pending"],
            update: ["$set": ["state": "reserved", "vessel_id": .string(vessel.id)]]
        )
        guard marked == 1 else {
            // Released (by a call or the sweep) while the room was being taken: give it back.
            try await giveBack(hold: hold, containers: load.capacity, weight: load.maxWeight)
            throw .unavailable(
                "the booking of consignment \(request.consignmentID) was released while it was made; book again")
        }
        return Booking(
            consignmentID: request.consignmentID, vesselID: vessel.id, containers: load.capacity,
            weight: load.maxWeight, ownerID: request.ownerID, state: .reserved, expiresAtMilliseconds: expiresAt,
            attempt: request.attempt)
    }

    public func confirm(consignmentID: String, attempt: Int64) async throws(ShippyError) -> Booking {
        if let document = try await client.findOneAndUpdate(
            in: Self.bookings,
            filter: ["_id": .string(consignmentID), "state": "reserved", "attempt": .int64(attempt)],
            update: ["$set": ["state": "confirmed", "expires_at": .int64(0)]]
        ) {
            return try BookingEntry(document).booking
        }
        guard let existing = try await entry(consignmentID) else {
            throw .notFound("no booking for consignment \(consignmentID)")
        }
        guard existing.state == "confirmed", existing.attempt == attempt else {
            throw BookingErrors.notReserved(consignmentID)
        }
        return existing.booking
    }

    public func release(consignmentID: String, attempt: Int64, ownerID: String) async throws(ShippyError) -> Booking {
        // An attempt's own reservation, or an earlier attempt's (which a later one supersedes): released.
        if let released = try await markReleased(
            ["_id": .string(consignmentID), "state": Self.unconfirmed, "attempt": ["$lte": .int64(attempt)]],
            attempt: attempt)
        {
            try await finishRelease(released)
            return released.booking
        }
        guard let existing = try await entry(consignmentID) else {
            guard attempt > 0 else { throw .notFound("no booking for consignment \(consignmentID)") }
            return try await recordNeverBooked(consignmentID, attempt: attempt, ownerID: ownerID)
        }
        switch existing.state {
        case "released":
            if !existing.freed { try await finishRelease(existing) }
            if existing.attempt < attempt {
                // A later attempt released before it booked: its `book`, arriving late, must not take the room.
                try await client.updateOne(
                    in: Self.bookings,
                    filter: ["_id": .string(consignmentID), "state": "released", "attempt": ["$lt": .int64(attempt)]],
                    update: ["$set": ["attempt": .int64(attempt)]])
                return try await release(consignmentID: consignmentID, attempt: attempt, ownerID: ownerID)
            }
            return existing.booking
        case "cancelled":
            // It holds no room, and never takes any again.
            if !existing.freed { try await finishRelease(existing) }
            return existing.booking
        case "confirmed" where existing.attempt == attempt:
            throw BookingErrors.confirmed(consignmentID)
        case "confirmed":
            return existing.booking  // Another attempt's booking: this attempt holds no room.
        default:
            // A later attempt's entry (this one holds nothing), or one being made: answered as it is.
            guard existing.attempt > attempt else { throw Self.bookingInProgress(consignmentID) }
            return existing.booking
        }
    }

    public func cancel(consignmentID: String) async throws(ShippyError) -> Booking {
        // Marked first, then the room given back (the same two steps as a release): a crash between them leaves
        // `freed: false`, which the next cancel or the sweep finishes.
        if let cancelled = try await client.findOneAndUpdate(
            in: Self.bookings, filter: ["_id": .string(consignmentID), "state": "confirmed"],
            update: ["$set": ["state": "cancelled", "freed": .bool(false)]]
        ).map({ document throws(ShippyError) in try BookingEntry(document) }) {
            try await finishRelease(cancelled)
            return cancelled.booking
        }
        guard let existing = try await entry(consignmentID) else {
            throw .notFound("no booking for consignment \(consignmentID)")
        }
        guard existing.state == "cancelled" else { throw BookingErrors.notConfirmed(consignmentID) }
        if !existing.freed { try await finishRelease(existing) }
        return existing.booking
    }

    public func releaseExpired(now: Int64) async throws(ShippyError) -> Int {
        var released = 0
        let expired = try await client.find(
            in: Self.bookings, filter: ["state": Self.unconfirmed, "expires_at": ["$lt": .int64(now)]], limit: 100)
        for document in expired {
            let candidate = try BookingEntry(document)
            // The same conditions again: a confirm that came first wins, and the entry stays confirmed.
            if let entry = try await markReleased(
                [
                    "_id": .string(candidate.consignmentID), "hold": .string(candidate.hold),
                    "state": Self.unconfirmed, "expires_at": ["$lt": .int64(now)],
                ], attempt: candidate.attempt)
            {
                try await finishRelease(entry)
                released += 1
            }
        }
        // Releases and cancels that a crash interrupted after the entry was marked.
        let unfinished = try await client.find(
            in: Self.bookings, filter: ["state": ["$in": .array(["released", "cancelled"])], "freed": .bool(false)],
            limit: 100)
        for document in unfinished { try await finishRelease(try BookingEntry(document)) }
        return released
    }

    // MARK: Booking steps

    /// Creates the booking entry in state `pending`, or answers the booking that exists for this id.
    /// - Returns: `nil` when the caller now holds the entry and must take the room.
    private func claim(_ request: BookingRequest, hold: String, expiresAt: Int64) async throws(ShippyError) -> Booking?
    {
        let fields: BSONFields = [
            "state": "pending", "owner_id": .string(request.ownerID), "vessel_id": "",
            "containers": .int32(request.specification.capacity), "weight": .int32(request.specification.maxWeight),
            "hold": .string(hold), "expires_at": .int64(expiresAt), "freed": .bool(false),
            "attempt": .int64(request.attempt),
        ]
        do {
            try await client.insertOne(
                BSONFields([(key: "_id", value: .string(request.consignmentID))] + fields.fields), into: Self.bookings)
            return nil
        } catch  where error.code == .alreadyExists {
            guard let existing = try await entry(request.consignmentID) else {
                throw Self.bookingInProgress(request.consignmentID)
            }
            guard existing.state != "pending" else { throw Self.bookingInProgress(request.consignmentID) }
            guard try request.takesRoomAnew(from: existing.booking) else { return existing.booking }
            // Booked again after a release (a later attempt, or a retry of a client without attempts).
            if !existing.freed { try await finishRelease(existing) }
            let reclaimed = try await client.findOneAndUpdate(
                in: Self.bookings,
                filter: [
                    "_id": .string(request.consignmentID), "state": "released", "freed": .bool(true),
                    "attempt": .int64(existing.attempt),
                ],
                update: ["$set": .document(fields)]
            )
            guard reclaimed != nil else {
                throw Self.bookingInProgress(request.consignmentID)
            }
            return nil
        }
    }

    /// Records `attempt` as released before it booked anything (see `Booking.neverBooked`).
    private func recordNeverBooked(
        _ consignmentID: String, attempt: Int64, ownerID: String
    ) async throws(ShippyError) -> Booking {
        let booking = Booking.neverBooked(consignmentID: consignmentID, attempt: attempt, ownerID: ownerID)
        do {
            try await client.insertOne(
                [
                    "_id": .string(consignmentID), "state": "released", "owner_id": .string(ownerID), "vessel_id": "",
                    "containers": .int32(0), "weight": .int32(0), "hold": .string(UUID().uuidString.lowercased()),
                    "expires_at": .int64(0), "freed": .bool(true), "attempt": .int64(attempt),
                ], into: Self.bookings)
            return booking
        } catch  where error.code == .alreadyExists {
            // Its `book` (or another release) came first: release what is there now.
            return try await release(consignmentID: consignmentID, attempt: attempt, ownerID: ownerID)
        }
    }

    /// Marks the entry matching `filter` released, for `attempt`; returns it, or `nil` when none matched.
    private func markReleased(_ filter: BSONFields, attempt: Int64) async throws(ShippyError) -> BookingEntry? {
        try await client.findOneAndUpdate(
            in: Self.bookings, filter: filter,
            update: ["$set": ["state": "released", "freed": .bool(false), "attempt": .int64(attempt)]]
        ).map { document throws(ShippyError) in try BookingEntry(document) }
    }

    /// Gives a released or cancelled entry's room back to its vessel, then marks the entry freed. Idempotent.
    private func finishRelease(_ entry: BookingEntry) async throws(ShippyError) {
        try await giveBack(hold: entry.hold, containers: entry.containers, weight: entry.weight)
        try await client.updateOne(
            in: Self.bookings,
            filter: ["_id": .string(entry.consignmentID), "hold": .string(entry.hold)],
            update: ["$set": ["freed": .bool(true)]]
        )
    }

    /// Removes the hold from whichever vessel has it and adds its room back, in one update; a hold that is
    /// not there (never taken, or already given back) matches nothing.
    private func giveBack(hold: String, containers: Int32, weight: Int32) async throws(ShippyError) {
        try await client.updateOne(
            in: Self.collection,
            filter: ["holds.hold": .string(hold)],
            update: [
                "$pull": ["holds": ["hold": .string(hold)]],
                "$inc": ["room_capacity": .int32(containers), "room_weight": .int32(weight)],
            ]
        )
    }

    private func entry(_ consignmentID: String) async throws(ShippyError) -> BookingEntry? {
        try await client.find(in: Self.bookings, filter: ["_id": .string(consignmentID)], limit: 1).first
            .map { document throws(ShippyError) in try BookingEntry(document) }
    }

    private static func bookingInProgress(_ consignmentID: String) -> ShippyError {
        .unavailable("consignment \(consignmentID) is being booked by another call; retry")
    }

    private static let unconfirmed: BSONValue = ["$in": .array(["pending", "reserved"])]
    /// A vessel's holds (one per booking it carries) are bookkeeping for releases: reads leave them out, so
    /// that what a read costs does not grow with the bookings a vessel has taken.
    private static let withoutHolds: BSONFields = ["holds": .int32(0)]
    private static let smallestFirst: BSONFields = ["capacity": .int32(1), "max_weight": .int32(1), "_id": .int32(1)]

    private static func hasRoom(for load: VesselSpecification) -> BSONFields {
        [
            "available": .bool(true),
            "room_capacity": ["$gte": .int32(load.capacity)],
            "room_weight": ["$gte": .int32(load.maxWeight)],
        ]
    }
}

/// A stored booking entry: the booking, and the saga's bookkeeping (`hold`, `freed`).
struct BookingEntry {
    var consignmentID: String
    var state: String
    var ownerID: String
    var vesselID: String
    var containers: Int32
    var weight: Int32
    var hold: String
    var expiresAt: Int64
    var freed: Bool
    var attempt: Int64

    init(_ document: BSONFields) throws(ShippyError) {
        guard let id = document["_id"]?.stringValue, let state = document["state"]?.stringValue,
            let hold = document["hold"]?.stringValue, let containers = document["containers"]?.int32Value,
            let weight = document["weight"]?.int32Value
        else { throw ShippyError(.internal, "a stored booking is malformed") }
        consignmentID = id
        self.state = state
        ownerID = document["owner_id"]?.stringValue ?? ""
        vesselID = document["vessel_id"]?.stringValue ?? ""
        self.containers = containers
        self.weight = weight
        self.hold = hold
        expiresAt = document["expires_at"]?.int64Value ?? 0
        freed = document["freed"]?.boolValue ?? false
        attempt = document["attempt"]?.int64Value ?? 0
    }

    /// What clients see: a pending entry is, to them, a reservation still being made.
    var booking: Booking {
        Booking(
            consignmentID: consignmentID, vesselID: vesselID, containers: containers, weight: weight, ownerID: ownerID,
            state: Booking.State(rawValue: state) ?? .reserved, expiresAtMilliseconds: expiresAt, attempt: attempt)
    }
}

extension BSONFields {
    /// The stored form of a vessel: its room left, and the holds taken from it (none for a new vessel).
    public init(_ vessel: Vessel) {
        self = [
            "_id": .string(vessel.id),
            "name": .string(vessel.name),
            "capacity": .int32(vessel.capacity),
            "max_weight": .int32(vessel.maxWeight),
            "available": .bool(vessel.available),
            "owner_id": .string(vessel.ownerID),
            "room_capacity": .int32(vessel.roomCapacity),
            "room_weight": .int32(vessel.roomWeight),
            "holds": .array([]),
        ]
    }
}

extension Vessel {
    /// Reads a stored vessel.
    /// - Throws: `ShippyError` `.internal` when the document lacks a field or holds the wrong type.
    public init(_ document: BSONFields) throws(ShippyError) {
        guard let id = document["_id"]?.stringValue,
            let name = document["name"]?.stringValue,
            let capacity = document["capacity"]?.int32Value,
            let maxWeight = document["max_weight"]?.int32Value
        else {
            throw ShippyError(.internal, "a stored vessel is malformed")
        }
        self.init(
            id: id,
            name: name,
            capacity: capacity,
            maxWeight: maxWeight,
            available: document["available"]?.boolValue ?? true,
            ownerID: document["owner_id"]?.stringValue ?? "",
            roomCapacity: document["room_capacity"]?.int32Value,
            roomWeight: document["room_weight"]?.int32Value
        )
    }
}
