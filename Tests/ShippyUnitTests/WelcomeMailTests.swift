import Foundation
import Logging
import ShippyContracts
import ShippyDomain
import ShippyMessaging
import ShippyRuntime
import ShippyTestSupport
import Synchronization
import Testing

@testable import EmailService

/// A mailer that records what it sends, and fails while told to.
final class RecordingMailer: Mailer {
    let sent = Mutex<[EventMail]>([])
    let failing = Mutex(false)
    let attempts = Mutex(0)

    struct Down: Error {}

    func send(_ mail: EventMail) async throws {
        attempts.withLock { $0 += 1 }
        if failing.withLock({ $0 }) { throw Down() }
        sent.withLock { $0.append(mail) }
    }
}

/// The claims on events, in memory, with the bucket's values and rules, for unit tests; fails while told to.
actor MailedEventsInMemory: MailedEvents {
    private(set) var values: [String: String] = [:]
    var failing = false

    var ids: Set<String> { Set(values.filter { $0.value == MailClaimValue.mailed }.keys) }

    func setFailing(_ failing: Bool) { self.failing = failing }
    func set(_ eventID: String, to value: String) { values[eventID] = value }

    func claim(_ eventID: String, lease: Duration) throws(ShippyError) -> MailClaim {
        if failing { throw .unavailable("NATS is down") }
        if let value = values[eventID], let state = MailClaimValue.state(of: value, lease: lease) { return state }
        values[eventID] = MailClaimValue.sending()
        return .claimed
    }

    func markMailed(_ eventID: String) throws(ShippyError) {
        if failing { throw .unavailable("NATS is down") }
        values[eventID] = MailClaimValue.mailed
    }

    func release(_ eventID: String) { values[eventID] = nil }
}

/// The email service's handling of one message: mail once per event id, retry what failed, drop garbage.
@Suite struct WelcomeMailTests {
    let mailer = RecordingMailer()
    let mailed = MailedEventsInMemory()

    var service: EventMailService {
        EventMailService(
            connection: MailConsumerConnection(nats: .init(url: "nats://127.0.0.1:1"), logger: Logger(label: "test")),
            ready: ReadinessSignal(), mailer: mailer, policy: DeliveryPolicy(), logger: Logger(label: "test"))
    }

    func event(_ id: String) throws -> [UInt8] {
        try Shippy_Events_UserCreated.with {
            $0.eventID = id; $0.email = "ann@example.com"; $0.name = "Ann"
        }.serializedBytes()
    }

    @Test func aRepeatedSignUpMailsTheOwnerANoticeAndOtherSubjectsOrBadAddressesMailNothing() async throws {
        let notice: [UInt8] = try Shippy_Events_SignUpRepeated.with {
            $0.eventID = "n1"; $0.email = "ann@example.com"; $0.name = "Ann"; $0.userID = "u1"
        }.serializedBytes()
        #expect(
            await service.handle(notice, subject: UserEvents.signUpRepeated, messageID: nil, mailed: mailed) == .done)
        let sent = mailer.sent.withLock { $0 }
        #expect(sent.map(\.kind) == [.signUpRepeated] && sent.first?.recipient == "ann@example.com")
        #expect(sent.first?.body.contains("already has an account") == true)
        #expect(await service.handle(notice, subject: "user.unknown", messageID: nil, mailed: mailed) == .done)
        let injected: [UInt8] = try Shippy_Events_UserCreated.with {
            $0.eventID = "x1"; $0.email = "x>,<victim@evil.io"; $0.name = "X"
        }.serializedBytes()
        #expect(await service.handle(injected, messageID: nil, mailed: mailed) == .done)
        #expect(mailer.sent.withLock { $0 }.count == 1, "nothing mailed for another subject or a bad address")
    }

    @Test func aBookingIsConfirmedAndACancelNoticedToTheOwnerOnceEachSayingWhetherAnAdminForcedIt() async throws {
        let booked: [UInt8] = try Shippy_Events_ConsignmentBooked.with {
            $0.eventID = "b1"; $0.consignmentID = "c-1"; $0.userID = "u1"; $0.email = "ann@example.com"
            $0.name = "Ann"; $0.vesselID = "vessel003"; $0.description_p = "Spare parts"; $0.weight = 25_000
            $0.containers = 3
        }.serializedBytes()
        let cancelled = { (id: String, forced: Bool) throws -> [UInt8] in
            try Shippy_Events_ConsignmentCancelled.with {
                $0.eventID = id; $0.consignmentID = "c-1"; $0.userID = "u1"; $0.email = "ann@example.com"
                $0.name = "Ann"; $0.vesselID = "vessel003"; $0.cancelledBy = forced ? "admin-1" : "u1"
                $0.forced = forced
            }.serializedBytes()
        }
        for _ in 0..<2 {
            #expect(
                await service.handle(booked, subject: ConsignmentEvents.booked, messageID: nil, mailed: mailed) == .done
            )
        }
        let notice = try cancelled("x1", false)
        #expect(
            await service.handle(notice, subject: ConsignmentEvents.cancelled, messageID: nil, mailed: mailed) == .done)
        #expect(
            await service.handle(
                try cancelled("x2", true), subject: ConsignmentEvents.cancelled, messageID: nil, mailed: mailed)
                == .done)
        let sent = mailer.sent.withLock { $0 }
        let shipment = EventMail.Shipment(
            consignmentID: "c-1", vesselID: "vessel003", description: "Spare parts", containers: 3, weight: 25_000)
        #expect(sent.map(\.eventID) == ["b1", "x1", "x2"], "one mail per event, a redelivery none")
        #expect(sent.first?.kind == .booked(shipment) && sent.allSatisfy { $0.recipient == "ann@example.com" })
        #expect(sent[0].subject == "Consignment c-1 is booked on vessel003")
        #expect(sent[0].body.contains("booked on vessel vessel003: 3 container(s), 25000 kg"), "\(sent[0].body)")
        #expect(sent[0].body.contains("consignment-cli cancel c-1"))
        #expect(sent[1].subject == "Consignment c-1 is cancelled" && !sent[1].body.contains("administrator"))
        #expect(sent[2].body.contains("cancelled by a Shippy administrator"), "\(sent[2].body)")
        // A consignment booked before its owner's contact was kept has no address: no mail, acknowledged.
        let anonymous: [UInt8] = try Shippy_Events_ConsignmentBooked.with {
            $0.eventID = "b2"; $0.consignmentID = "c-2"; $0.userID = "u1"
        }.serializedBytes()
        #expect(
            await service.handle(anonymous, subject: ConsignmentEvents.booked, messageID: nil, mailed: mailed) == .done)
        #expect(mailer.sent.withLock { $0 }.count == 3)
    }

    @Test func aConsignmentMailsHeadersStayHeadersWhateverItsIdOrDescriptionHolds() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("shippy-mail-\(UUID().uuidString)")
            .path
        let shipment = EventMail.Shipment(
            consignmentID: "c\r\nBcc: victim@evil.example", vesselID: "v\r\nX: y", description: "a\r\n\r\nBcc: z")
        let mail = EventMail(
            eventID: "e-\(UUID().uuidString)", recipient: "ann@example.com", name: "Ann", kind: .booked(shipment))
        try await FileMailer(directory: folder, logger: Logger(label: "test")).send(mail)
        let text = try String(contentsOfFile: "\(folder)/\(mail.eventID).eml", encoding: .utf8)
        let header = text.components(separatedBy: "\r\n\r\n")[0]
        #expect(!header.contains("Bcc:") && !header.contains("X: y"), "\(header)")
        #expect(header.components(separatedBy: "\r\n").allSatisfy { $0.utf8.allSatisfy { (0x20...0x7E).contains($0) } })
    }

    @Test func anEventIsMailedOnceAndItsRedeliveryIsAcknowledgedWithoutMail() async throws {
        #expect(await service.handle(try event("e1"), messageID: "m1", mailed: mailed) == .done)
        #expect(await service.handle(try event("e1"), messageID: "m2", mailed: mailed) == .done)
        #expect(mailer.sent.withLock { $0 } == [EventMail(eventID: "e1", recipient: "ann@example.com", name: "Ann")])
        #expect(await mailed.ids == ["e1"])
    }

    @Test func aFailedMailIsRetriedAndSentOnRedelivery() async throws {
        mailer.failing.withLock { $0 = true }
        #expect(await service.handle(try event("e2"), messageID: nil, mailed: mailed) == .retry(eventID: "e2"))
        mailer.failing.withLock { $0 = false }
        #expect(await service.handle(try event("e2"), messageID: nil, mailed: mailed) == .done)
        #expect(mailer.sent.withLock { $0.map(\.eventID) } == ["e2"])
    }

    @Test func whenMailedIdsCannotBeReadNothingIsMailedAndItIsRetried() async throws {
        await mailed.setFailing(true)
        #expect(await service.handle(try event("e3"), messageID: nil, mailed: mailed) == .retry(eventID: "e3"))
        #expect(mailer.sent.withLock { $0 }.isEmpty)
    }

    @Test func aDeliveryWhileAnotherIsMailingTheEventWaitsAndSendsNothing() async throws {
        await mailed.set("e4", to: MailClaimValue.sending(at: Date().addingTimeInterval(-10)))
        guard case .later("e4", let delay) = await service.handle(try event("e4"), messageID: nil, mailed: mailed)
        else { Issue.record("a held event was not deferred"); return }
        #expect(delay > .seconds(40) && delay <= .seconds(50), "asks again when the 60 s lease ends")
        #expect(mailer.attempts.withLock { $0 } == 0)
    }

    @Test func aClaimOlderThanTheLeaseIsTakenOverAndMailedOnce() async throws {
        await mailed.set("e5", to: MailClaimValue.sending(at: Date().addingTimeInterval(-61)))
        #expect(await service.handle(try event("e5"), messageID: nil, mailed: mailed) == .done)
        #expect(await service.handle(try event("e5"), messageID: nil, mailed: mailed) == .done)
        #expect(mailer.sent.withLock { $0.map(\.eventID) } == ["e5"])
    }

    @Test func aFailedSendGivesItsClaimBackSoTheRetryNeedNotWaitForTheLease() async throws {
        mailer.failing.withLock { $0 = true }
        _ = await service.handle(try event("e6"), messageID: nil, mailed: mailed)
        #expect(await mailed.values["e6"] == nil)
    }

    @Test func aMalformedMessageIsAcknowledgedAndDropped() async {
        #expect(await service.handle([0xff, 0x01], messageID: "junk", mailed: mailed) == .done)
        #expect(mailer.sent.withLock { $0 }.isEmpty)
    }

    @Test func retriesBackOffDoublingUpToFiveMinutes() {
        let policy = DeliveryPolicy(maxDeliveries: 5, retryDelay: .seconds(2))
        #expect(
            (1...4).map { policy.delay(afterDelivery: $0) } == [.seconds(2), .seconds(4), .seconds(8), .seconds(16)])
        #expect(policy.delay(afterDelivery: 40) == .seconds(300))
    }

    @Test(arguments: ["Eve\r\nBcc: x@example.com", "Zoë <eve@evil.example>", "Ann", String(repeating: "名", count: 200)])
    func welcomeMailHeadersAreEncodedWhateverTheNameHolds(name: String) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("shippy-mail-\(UUID().uuidString)")
            .path
        let mail = EventMail(eventID: "e-\(UUID().uuidString)", recipient: "eve@example.com", name: name)
        try await FileMailer(directory: folder, logger: Logger(label: "test")).send(mail)
        let text = try String(contentsOfFile: "\(folder)/\(mail.eventID).eml", encoding: .utf8)
        let header = text.components(separatedBy: "\r\n\r\n")[0]
        // Every header line starts with a known name, or is a folded continuation (leading space).
        let lines = header.components(separatedBy: "\r\n")
        #expect(
            lines.allSatisfy { line in
                ["From: ", "To: ", "Subject: ", "Message-ID: ", "Content-Type: "].contains { line.hasPrefix($0) }
                    || line.hasPrefix(" ")
            }, "\(lines)")
        #expect(!header.contains("Bcc:") && !header.contains("\n\n") && lines.allSatisfy { $0.utf8.count <= 998 })
        #expect(lines.allSatisfy { $0.utf8.allSatisfy { (0x20...0x7E).contains($0) } }, "headers are plain ASCII")
        if name == "Ann" { #expect(header.contains("To: Ann <eve@example.com>")) }
        // The encoded words decode back to the name.
        let decoded = header.matches(of: /=\?UTF-8\?B\?([A-Za-z0-9+\/=]*)\?=/).compactMap {
            Data(base64Encoded: String($0.1))
        }
        if name != "Ann" {
            #expect(decoded.reduce(Data(), +).starts(with: Data(name.utf8)))
        }
    }
}
