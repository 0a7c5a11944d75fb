import Foundation
import Logging
import ShippyContracts
import ShippyDomain
import ShippyMessaging
import ShippyMongo
import ShippyRuntime
import ShippyStorage
import ShippyTestSupport
import Testing

@testable import EmailService

/// The outbox in consignment-service's MongoDB records, published through a real nats-server (JetStream): each
/// change's event stored in the same update, published in order, once, with its message id and trace context; kept
/// while NATS is away; set aside when NATS refuses it; and mailed once by the real email-service consumer.
@Suite(.timeLimit(.minutes(3)), .dropsItsDatabases) struct ConsignmentOutboxTests {
    static let ann = Contact(email: "ann@example.com", name: "Ann")

    func withStore(_ body: (MongoConsignmentRepository, MongoClient, NATSServer) async throws -> Void) async throws {
        let nats = NATSServer(port: try freePort())
        try await nats.start()
        try await cleaningUp({ await nats.destroy() }) {
            try await withMongoClient(database: TestEnvironment.uniqueDatabase("outbox"), threads: 2) { client in
                let repository = MongoConsignmentRepository(client: client)
                try await repository.prepare()
                try await body(repository, client, nats)
            }
        }
    }

    /// Books and cancels `id` in the store, each change with its event.
    func bookAndCancel(
        _ id: String, in repository: MongoConsignmentRepository, events: (booked: OutboxEvent, cancelled: OutboxEvent)
    ) async throws {
        let consignment = Consignment(
            id: id, description: "Outbox", weight: 1_000,
            containers: [Container(customerID: "c", origin: "Derby", userID: "ann")], userID: "ann")
        _ = try await repository.begin(consignment, contact: Self.ann, credential: "t", now: 1)
        #expect(try await repository.markBooked(id: id, attempt: 1, vesselID: "v", event: events.booked) != nil)
        #expect(try await repository.markBooked(id: id, attempt: 1, vesselID: "v", event: .sample()) != nil)
        _ = try await repository.markCancelling(id: id, cancelledBy: "ann", credential: "t", now: 2)
        try await repository.markCancelled(id: id, event: events.cancelled)
        try await repository.markCancelled(id: id, event: .sample())
    }

    @Test func eachChangesEventIsPublishedOnceInOrderAndKeptWhileNATSIsAway() async throws {
        try await withStore { repository, client, nats in
            let trace = ["traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"]
            let booked = OutboxEvent(id: UUID(), subject: ConsignmentEvents.booked, payload: [1], traceContext: trace)
            let cancelled = OutboxEvent(id: UUID(), subject: ConsignmentEvents.cancelled, payload: [2])
            try await bookAndCancel("c1", in: repository, events: (booked, cancelled))
            #expect(try await repository.record(id: "c1")?.contact == Self.ann, "the owner's contact is kept")
            // The repeated changes stored nothing: one record waits, with two events.
            #expect(try await repository.backlog().pending == 1)

            // NATS away: nothing leaves and nothing is lost.
            let away = try await repository.publishPending(limit: 10) { _ in throw ShippyError.unavailable("down") }
            #expect(away == 0)
            #expect(try await repository.backlog().pending == 1)

            let publisher = try await ConsignmentEvents.stream.connect(.init(url: nats.url), name: "test-outbox")
            try await cleaningUp({ await publisher.close() }) {
                let published = try await repository.publishPending(limit: 10) { event in
                    try await publisher.publish(
                        subject: event.subject, payload: event.payload, messageID: event.id.uuidString.lowercased(),
                        headers: event.traceContext)
                }
                #expect(published == 2)
                #expect(try await repository.publishPending(limit: 10) { _ in Issue.record("published twice") } == 0)
                let backlog = try await repository.backlog()
                #expect(backlog.pending == 0 && backlog.deadLettered == 0, "\(backlog)")
                let stored = try #require(try await client.find(in: "consignments", filter: ["_id": "c1"]).first)
                #expect(stored["outbox"] == nil && stored["outbox_at"] == nil, "a record with nothing to publish")

                let subscription = try await publisher.pullSubscription(subject: ConsignmentEvents.all, durable: "test")
                let messages = try await subscription.fetch(limit: 5, wait: .seconds(2))
                #expect(messages.map(\.subject) == [ConsignmentEvents.booked, ConsignmentEvents.cancelled])
                #expect(messages.map(\.messageID) == [booked, cancelled].map { $0.id.uuidString.lowercased() })
                #expect(messages.first?.traceHeaders == trace)
                for message in messages { await message.ack() }
                await subscription.close()
            }
        }
    }

    @Test func anEventNATSRefusesIsSetAsideAndTheOthersFlow() async throws {
        try await withStore { repository, _, nats in
            let huge = OutboxEvent(
                id: UUID(), subject: ConsignmentEvents.booked, payload: Array(repeating: 7, count: 1_500_000))
            try await bookAndCancel("huge", in: repository, events: (huge, .sample(ConsignmentEvents.cancelled)))
            try await bookAndCancel(
                "small", in: repository,
                events: (.sample(ConsignmentEvents.booked), .sample(ConsignmentEvents.cancelled)))
            let publisher = try await ConsignmentEvents.stream.connect(.init(url: nats.url), name: "test-outbox")
            try await cleaningUp({ await publisher.close() }) {
                let published = try await repository.publishPending(limit: 10) { event in
                    try await publisher.publish(
                        subject: event.subject, payload: event.payload, messageID: event.id.uuidString.lowercased())
                }
                #expect(published == 3)
                let backlog = try await repository.backlog()
                #expect(backlog.pending == 0 && backlog.deadLettered == 1, "\(backlog)")
            }
        }
    }

    /// The consignment events of a real store, published by the real publisher service and mailed by the real
    /// email-service consumer: one booking confirmation and one cancellation notice, as .eml files.
    @Test func thePublisherServiceAndEmailServiceMailTheOwnerOncePerEvent() async throws {
        try await withStore { repository, _, nats in
            let mail = FileManager.default.temporaryDirectory.appendingPathComponent("shippy-mail-\(UUID())").path
            let logger = Logger(label: "test")
            let ready = ReadinessSignal()
            ready.open()
            let publisher = OutboxPublisher(
                nats: .init(url: nats.url), stream: ConsignmentEvents.stream, outbox: repository, ready: ready,
                client: "test-consignment-service", logger: logger)
            let email = EventMailService.services(
                nats: .init(url: nats.url), mailer: FileMailer(directory: mail, logger: logger),
                policy: DeliveryPolicy(), server: ServerConfiguration(port: 0, startupTimeout: .seconds(10)),
                logger: logger)
            let group = ServiceRunner.makeGroup(
                [("publisher", publisher)] + email.services, shutdownGrace: .seconds(5), logger: logger)
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                let record = ConsignmentRecord(
                    consignment: Consignment(
                        id: "mailed", description: "Spare parts", weight: 2_000,
                        containers: [Container(customerID: "c", origin: "Derby", userID: "ann")], userID: "ann"),
                    status: .booked, attempt: 1, credential: "", startedAtMilliseconds: 1, cancelledBy: "ann",
                    contact: Self.ann)
                let booked = OutboxEvent(
                    id: UUID(), subject: ConsignmentEvents.booked,
                    payload: try Shippy_Events_ConsignmentBooked.with {
                        $0.eventID = "b-\(UUID())"; $0.consignmentID = record.id; $0.userID = "ann"
                        $0.email = Self.ann.email; $0.name = Self.ann.name; $0.vesselID = "v"; $0.containers = 1
                        $0.weight = 2_000; $0.description_p = "Spare parts"
                    }.serializedBytes())
                let cancelled = OutboxEvent(
                    id: UUID(), subject: ConsignmentEvents.cancelled,
                    payload: try Shippy_Events_ConsignmentCancelled.with {
                        $0.eventID = "x-\(UUID())"; $0.consignmentID = record.id; $0.userID = "ann"
                        $0.email = Self.ann.email; $0.name = Self.ann.name; $0.vesselID = "v"; $0.cancelledBy = "ann"
                    }.serializedBytes())
                try await bookAndCancel(record.id, in: repository, events: (booked, cancelled))
                let files = { (try? FileManager.default.contentsOfDirectory(atPath: mail)) ?? [] }
                #expect(await eventually(within: .seconds(20)) { files().count == 2 }, "\(files())")
                try await Task.sleep(for: .seconds(1))
                let texts = try files().sorted().map { try String(contentsOfFile: "\(mail)/\($0)", encoding: .utf8) }
                #expect(texts.count == 2, "one mail per event")
                #expect(texts.contains { $0.contains("Subject: Consignment mailed is booked on v") })
                #expect(texts.contains { $0.contains("Subject: Consignment mailed is cancelled") })
                #expect(texts.allSatisfy { $0.contains("To: Ann <ann@example.com>") })
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
        }
    }
}
