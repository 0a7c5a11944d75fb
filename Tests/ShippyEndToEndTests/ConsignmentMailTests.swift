import Foundation
import ShippyTestSupport
import Testing

/// The owner's mails for a consignment's life, through the real executables: consignment-cli books and cancels,
/// consignment-service publishes each change from its outbox to NATS, email-service writes each mail once.
@Suite(.timeLimit(.minutes(3)), .dropsItsDatabases) struct ConsignmentMailTests {
    let sample = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("consignment.json").path

    @Test func theOwnerIsMailedOnceWhenTheConsignmentIsBookedAndOnceWhenItIsCancelled() async throws {
        let story = try await TelemetryTests.Story.start()
        try await cleaningUp({ await story.stop() }) {
            for service in story.services { try await service.waitUntilServing() }
            let (_, token) = try await story.shipAsAnn(sample: sample)
            let shipping = ["CONSIGNMENT_SERVICE_ADDRESS": "127.0.0.1:\(story.consignment.port)"]
            let shipped = try await story.run("consignment-cli", ["--json", sample, token], environment: shipping)
            #expect(shipped.status == 0, "\(shipped.error)")
            let report = try #require(
                try JSONSerialization.jsonObject(with: Data(shipped.output.utf8)) as? [String: Any])
            let id = try #require((report["created"] as? [String: Any])?["id"] as? String, "\(shipped.output)")
            let vessel = try #require((report["created"] as? [String: Any])?["vessel_id"] as? String)
            for _ in 0..<2 {
                let cancelled = try await story.run("consignment-cli", ["cancel", id, token], environment: shipping)
                #expect(cancelled.status == 0, "\(cancelled.error)")
            }

            // The welcome mail, two booking confirmations (the sample was shipped twice) and one cancellation notice.
            func mails() -> [String] {
                let files = (try? FileManager.default.contentsOfDirectory(atPath: story.mail)) ?? []
                return files.filter { $0.hasSuffix(".eml") }.sorted().compactMap {
                    try? String(contentsOfFile: "\(story.mail)/\($0)", encoding: .utf8)
                }
            }
            let arrived = await eventually(within: .seconds(30)) { mails().count == 4 }
            #expect(arrived, "mails: \(mails())")
            try await Task.sleep(for: .seconds(2))
            let all = mails()
            #expect(all.count == 4, "no mail twice: \(all)")
            #expect(
                all.filter { $0.contains("Subject: Consignment ") && $0.contains(" is booked on vessel") }.count == 2,
                "\(all)")
            let notices = all.filter { $0.contains("Subject: Consignment \(id) is cancelled\r\n") }
            #expect(notices.count == 1, "\(all)")
            #expect(notices.first?.contains("To: Ann <ann@example.com>") == true)
            #expect(notices.first?.contains("its room on vessel \(vessel) is given back") == true, "\(notices)")
            #expect(all.contains { $0.contains("Subject: Consignment \(id) is booked on \(vessel)\r\n") })
        }
    }
}
