import Foundation
import Logging
import ShippyContracts
import ShippyRuntime
import Synchronization
import Testing

@testable import EmailService

/// A mailer that records what it sends, and fails while told to.
final class RecordingMailer: Mailer {
    let sent = Mutex<[WelcomeMail]>([])
    let failing = Mutex(false)

    struct Down: Error {}

    func send(_ mail: WelcomeMail) async throws {
        if failing.withLock({ $0 }) { throw Down() }
        sent.withLock { $0.append(mail) }
    }
}

/// The email service's handling of one message: mail once per event id, acknowledge only what is done.
@Suite struct WelcomeMailTests {
    let mailer = RecordingMailer()

    var service: WelcomeMailService {
        WelcomeMailService(
            natsURL: "nats://127.0.0.1:1", mailer: mailer, health: HealthService(services: []),
            retry: StartupRetry(deadline: .seconds(1)), logger: Logger(label: "test"))
    }

    func event(_ id: String) throws -> [UInt8] {
        try Shippy_Events_UserCreated.with {
            $0.eventID = id; $0.email = "ann@example.com"; $0.name = "Ann"
        }.serializedBytes()
    }

    @Test func anEventIsMailedOnceAndItsRedeliveryIsAcknowledgedWithoutMail() async throws {
        var handled = RecentIDs(capacity: 10)
        #expect(await service.handle(try event("e1"), messageID: "m1", handled: &handled))
        #expect(await service.handle(try event("e1"), messageID: "m2", handled: &handled))
        #expect(mailer.sent.withLock { $0 } == [WelcomeMail(eventID: "e1", recipient: "ann@example.com", name: "Ann")])
    }

    @Test func aFailedMailIsNotAcknowledgedAndIsSentOnRedelivery() async throws {
        var handled = RecentIDs(capacity: 10)
        mailer.failing.withLock { $0 = true }
        #expect(await service.handle(try event("e2"), messageID: nil, handled: &handled) == false)
        mailer.failing.withLock { $0 = false }
        #expect(await service.handle(try event("e2"), messageID: nil, handled: &handled))
        #expect(mailer.sent.withLock { $0.map(\.eventID) } == ["e2"])
    }

    @Test func aMalformedMessageIsAcknowledgedAndDropped() async {
        var handled = RecentIDs(capacity: 10)
        #expect(await service.handle([0xff, 0x01], messageID: "junk", handled: &handled))
        #expect(mailer.sent.withLock { $0 }.isEmpty)
    }

    @Test(arguments: ["Eve\r\nBcc: x@example.com", "Zoë <eve@evil.example>", "Ann", String(repeating: "名", count: 200)])
    func welcomeMailHeadersAreEncodedWhateverTheNameHolds(name: String) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("shippy-mail-\(UUID().uuidString)")
            .path
        let mail = WelcomeMail(eventID: "e-\(UUID().uuidString)", recipient: "eve@example.com", name: name)
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

    @Test func recentIDsForgetTheOldestBeyondCapacity() {
        var ids = RecentIDs(capacity: 2)
        for id in ["a", "b", "c"] { ids.insert(id) }
        #expect(!ids.contains("a") && ids.contains("b") && ids.contains("c"))
    }
}
