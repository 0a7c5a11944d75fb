import GRPCCore
import ShippyContracts
import ShippyDomain
import ShippyIdentity
import ShippyTestSupport
import Testing

/// GetConsignment and CancelConsignment through the in-process transport: who sees and cancels what, and the
/// status each answer carries.
extension ConsignmentHandlerTests {
    static let ada = User(
        id: "d0000000-0000-4000-8000-00000000000d", name: "Ada", company: "Shippy", email: "ada@example.com")

    func adminBearer(_ signer: TokenSigner) async throws -> Metadata {
        ["authorization": "Bearer \(try await signer.sign(Self.ada, roles: [.user, .admin]))"]
    }

    static func ref(_ id: String) -> Consignment_ConsignmentRef { .with { $0.id = id } }

    @Test func theOwnerAndAnAdminSeeAConsignmentAndAnyoneElseIsToldItDoesNotExist() async throws {
        try await withService { client, signer in
            let ann = try await bearer(signer, Self.ann)
            let created = try await client.createConsignment(Self.sample, metadata: ann).consignment
            let own = try await client.getConsignment(Self.ref(created.id), metadata: ann).consignment
            #expect(own == created && own.status == .booked)
            #expect(
                try await client.getConsignment(Self.ref(created.id), metadata: adminBearer(signer)).consignment == own)
            let bob = try await bearer(signer, Self.bob)
            // Another user's id and an id that never existed answer alike: ids cannot be probed.
            await expectStatus(.notFound, "no consignment \(created.id) of yours") {
                _ = try await client.getConsignment(Self.ref(created.id), metadata: bob)
            }
            await expectStatus(.notFound, "no consignment nothing-here of yours") {
                _ = try await client.getConsignment(Self.ref("nothing-here"), metadata: bob)
            }
            await expectStatus(.invalidArgument, "id must not be empty") {
                _ = try await client.getConsignment(Self.ref(""), metadata: ann)
            }
            await expectStatus(.unauthenticated, "token") {
                _ = try await client.getConsignment(Self.ref(created.id))
            }
        }
    }

    @Test func aCancelIsTheOwnersOrAnAdminsAndAnsweringItAgainChangesNothing() async throws {
        let vessels = ScriptedVesselBooker()
        try await withService(vessels: vessels) { client, signer in
            let ann = try await bearer(signer, Self.ann)
            let keyed = ann.adding("lifecycle-1", forKey: "idempotency-key")
            let first = try await client.createConsignment(Self.sample, metadata: keyed).consignment
            let second = try await client.createConsignment(Self.sample, metadata: ann).consignment

            await expectStatus(.notFound, "no consignment \(first.id) of yours") {
                _ = try await client.cancelConsignment(Self.ref(first.id), metadata: try await bearer(signer, Self.bob))
            }
            let cancelled = try await client.cancelConsignment(Self.ref(first.id), metadata: ann).consignment
            #expect(cancelled.status == .cancelled && cancelled.cancelledBy == Self.ann.id)
            #expect(cancelled.id == first.id && cancelled.vesselID == first.vesselID)
            #expect(try await client.cancelConsignment(Self.ref(first.id), metadata: ann).consignment == cancelled)

            // An admin's cancel of another user's consignment is forced, and says who did it.
            let forced = try await client.cancelConsignment(Self.ref(second.id), metadata: adminBearer(signer))
            #expect(forced.consignment.status == .cancelled && forced.consignment.cancelledBy == Self.ada.id)
            #expect(await vessels.cancelled == [first.id, second.id])

            let listed = try await client.getConsignments(Consignment_GetRequest(), metadata: ann).consignments
            #expect(listed.map(\.status) == [.cancelled, .cancelled] && listed.map(\.id) == [first.id, second.id])
            // The key of a cancelled consignment does not book it again.
            await expectStatus(.failedPrecondition, "then cancelled; to ship again, use a new key") {
                _ = try await client.createConsignment(Self.sample, metadata: keyed)
            }
        }
    }

    @Test func eachChangeStoresOneEventForTheOwnersMailWithWhoCancelledIt() async throws {
        try await withService { client, signer in
            let ann = try await bearer(signer, Self.ann)
            let keyed = ann.adding("events-1", forKey: "idempotency-key")
            let first = try await client.createConsignment(Self.sample, metadata: keyed).consignment
            #expect(try await client.createConsignment(Self.sample, metadata: keyed).consignment == first)
            let second = try await client.createConsignment(Self.sample, metadata: ann).consignment
            for _ in 0..<2 { _ = try await client.cancelConsignment(Self.ref(first.id), metadata: ann) }
            _ = try await client.cancelConsignment(Self.ref(second.id), metadata: adminBearer(signer))

            // Retries and repeated cancels store nothing more: two bookings, two cancels, in the order they happened.
            let events = await repository.outbox
            #expect(
                events.map(\.subject) == [
                    "consignment.booked", "consignment.booked", "consignment.cancelled", "consignment.cancelled",
                ])
            #expect(Set(events.map(\.id)).count == 4, "each event has an id of its own")
            let booked = try Shippy_Events_ConsignmentBooked(serializedBytes: events[0].payload)
            #expect(booked.eventID == events[0].id.uuidString.lowercased())
            #expect(booked.consignmentID == first.id && booked.userID == Self.ann.id)
            #expect(booked.email == Self.ann.email && booked.name == Self.ann.name, "from the token that booked it")
            #expect(
                booked.vesselID == first.vesselID && booked.containers == Self.sample.containers.count
                    && booked.weight == Self.sample.weight)
            #expect(booked.description_p == Self.sample.description_p)
            let cancelled = try Shippy_Events_ConsignmentCancelled(serializedBytes: events[2].payload)
            #expect(cancelled.consignmentID == first.id && cancelled.cancelledBy == Self.ann.id && !cancelled.forced)
            #expect(cancelled.email == Self.ann.email, "the owner is told, whoever cancelled")
            let forced = try Shippy_Events_ConsignmentCancelled(serializedBytes: events[3].payload)
            #expect(forced.consignmentID == second.id && forced.cancelledBy == Self.ada.id && forced.forced)
            #expect(forced.email == Self.ann.email && forced.userID == Self.ann.id)
        }
    }
}

extension Metadata {
    /// These metadata with one more value.
    func adding(_ value: String, forKey key: String) -> Metadata {
        var metadata = self
        metadata.addString(value, forKey: key)
        return metadata
    }
}
