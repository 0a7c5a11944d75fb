import Foundation
import GRPCCore
import Logging
import PostgresNIO
import ShippyContracts
import ShippyDomain
import ShippyMessaging
import ShippyPostgres
import ShippyRuntime
import ShippyStorage
import ShippyTestSupport
import Testing

@testable import EmailService

/// `user.created` from the real user-service through a real nats-server (JetStream) to the real
/// email-service, which writes the welcome mail as an .eml file.
@Suite(.timeLimit(.minutes(3)), .dropsItsDatabases) struct EventsTests {
    let keys = FileManager.default.temporaryDirectory.appendingPathComponent("shippy-events-\(UUID().uuidString)").path

    /// The harness's NATS takes TLS and its password only, as a production one should: a client that verifies its
    /// certificate against the authority (`NATS_CA`) and gives the password gets in; a `nats://` URL, the system's
    /// authorities, another authority and a wrong password are each refused with what was wrong, never the password.
    @Test func theHarnessNATSTakesVerifiedTLSAndItsPasswordOnly() async throws {
        let url = try TestEnvironment.value("SHIPPY_NATS_URL")
        let authorities = try TestEnvironment.value("SHIPPY_NATS_CA")
        #expect(url.hasPrefix("tls://"))
        let client = try await UserEvents.connect(.init(url: url, authorities: authorities), name: "test-tls")
        await client.close()
        var wrongPassword = try #require(URLComponents(string: url))
        wrongPassword.password = "not-the-password-25"
        let password = try #require(URLComponents(string: url)?.password)
        // A nats:// URL gets TLS too (the server requires it), verified against the system's authorities.
        let refused: [(String, NATSEndpoint, because: String)] = [
            ("nats://", .init(url: url.replacingOccurrences(of: "tls://", with: "nats://")), "SSL handshake error"),
            ("the system's authorities", .init(url: url), "SSL handshake error"),
            (
                "another authority", .init(url: url, authorities: try TestAuthority(name: "Another CA").bundle),
                "SSL handshake error"
            ),
            (
                "a wrong password", .init(url: try #require(wrongPassword.string), authorities: authorities),
                "Authorization Violation"
            ),
        ]
        for (kind, endpoint, because) in refused {
            let error = await #expect(throws: ShippyError.self, "\(kind)") {
                _ = try await NATSClient.connect(endpoint, name: "test-refused")
            }
            let text = "\(String(describing: error))"
            #expect(text.contains(because), "\(kind): \(text)")
            #expect(!text.contains(password) && !text.contains("not-the-password-25"), "\(kind): \(text)")
        }
    }

    func startUserService(nats: NATSServer) async throws -> ServiceProcess {
        let service = try ServiceProcess.start(
            "user-service",
            environment: [
                "POSTGRES_URL": try await PostgresTestDatabase.create(), "NATS_URL": nats.url, "BCRYPT_COST": "4",
                "JWT_GENERATE_KEY": "true", "JWT_PRIVATE_KEY_FILE": "\(keys)/signing.pem",
            ])
        try await service.waitUntilServing()
        return service
    }

    func startEmailService(nats: NATSServer, mailDirectory: String) async throws -> ServiceProcess {
        let service = try ServiceProcess.start(
            "email-service", environment: ["NATS_URL": nats.url, "MAILER": "files", "MAIL_DIR": mailDirectory])
        try await service.waitUntilServing()
        return service
    }

    func signUp(_ email: String, password: String = "welcome-password", at service: ServiceProcess) async throws {
        _ = try await service.withClient { client in
            try await User_UserService.Client(wrapping: client).create(
                .with {
                    $0.name = "New User"; $0.email = email; $0.password = password
                })
        }
    }

    /// The .eml files in `directories`, by the address they are to.
    func mails(in directories: [String]) -> [String] {
        directories.flatMap { directory in
            ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".eml") }
                .compactMap {
                    (try? String(contentsOfFile: "\(directory)/\($0)", encoding: .utf8))?
                        .split(separator: "\r\n").first { $0.hasPrefix("To: ") }.map(String.init)
                }
        }
    }

    /// Whether email-service's consumer has every event of the stream acknowledged (or terminated): none pending,
    /// none awaiting an acknowledgement, so none can be delivered again.
    func everyEventAcknowledged(_ nats: NATSServer) async -> Bool {
        guard let watcher = try? await NATSClient.connect(.init(url: nats.url), name: "test-watcher") else {
            return false
        }
        let state = try? await watcher.consumerState(stream: UserEvents.stream, durable: "email-service-users")
        await watcher.close()
        return state.map { $0.pending == 0 && $0.acknowledgementsPending == 0 } ?? false
    }

    func mailDirectory() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("shippy-mail-\(UUID().uuidString)").path
    }

    @Test func welcomeMailIsWrittenWithinFiveSecondsAndTheEventHoldsNoSecret() async throws {
        let nats = NATSServer(port: try freePort())
        try await nats.start()
        let directory = mailDirectory()
        let user = try await startUserService(nats: nats)
        let email = try await startEmailService(nats: nats, mailDirectory: directory)
        // The event as JetStream stored it, read through a consumer of the test's own.
        let watcher = try await NATSClient.connect(.init(url: nats.url), name: "test-watcher")

        let password = "sekrit-password-42"
        try await signUp("ann@example.com", password: password, at: user)
        let signedUp = ContinuousClock.now
        let mailed = await eventually(within: .seconds(5)) {
            mails(in: [directory]) == ["To: New User <ann@example.com>"]
        }
        #expect(mailed, "no welcome mail within 5 s; email-service log:\n\(email.process.errorOutput)")
        print("welcome mail written \(ContinuousClock.now - signedUp) after the sign-up")

        let stored = try await watcher.pullSubscription(subject: "user.created", durable: "test-watcher")
        let message = try #require(try await stored.fetch(limit: 1, wait: .seconds(5)).first, "no user.created stored")
        let payload = message.payload
        await message.ack()
        let event = try Shippy_Events_UserCreated(serializedBytes: payload)
        #expect(event.email == "ann@example.com" && !event.userID.isEmpty && !event.eventID.isEmpty)
        let bytes = String(decoding: payload, as: UTF8.self)
        #expect(!bytes.contains(password) && !bytes.contains("$2b$") && !bytes.contains("$2a$"))

        await stored.close()
        await watcher.close()
        for service in [email, user] {
            service.process.signal(SIGTERM)
            #expect(await service.process.waitForExit() == 0)
        }
        await nats.destroy()
    }

    @Test func signUpSucceedsWhileNATSIsDownAndTheMailArrivesWhenItIsBack() async throws {
        let nats = NATSServer(port: try freePort())
        try await nats.start()
        let directory = mailDirectory()
        let user = try await startUserService(nats: nats)
        let email = try await startEmailService(nats: nats, mailDirectory: directory)
        try await cleaningUp({
            for service in [email, user] { await service.process.stop() }
            await nats.destroy()
        }) {
            await nats.stop()
            try await signUp("bob@example.com", at: user)
            #expect(mails(in: [directory]).isEmpty)

            try await nats.start()
            let mailed = await eventually(within: .seconds(30)) {
                mails(in: [directory]) == ["To: New User <bob@example.com>"]
            }
            #expect(
                mailed,
                "no mail after NATS came back; user-service log:\n\(user.process.errorOutput)\nemail-service log:\n\(email.process.errorOutput)"
            )
        }
    }

    @Test func aRedeliveredEventIsMailedOnce() async throws {
        let nats = NATSServer(port: try freePort())
        try await nats.start()
        let directory = mailDirectory()
        let email = try await startEmailService(nats: nats, mailDirectory: directory)
        try await cleaningUp({
            await email.process.stop()
            await nats.destroy()
        }) {
            let event = Shippy_Events_UserCreated.with {
                $0.eventID = UUID().uuidString.lowercased()
                $0.userID = UUID().uuidString.lowercased()
                $0.name = "Twice"
                $0.email = "twice@example.com"
            }
            let publisher = try await NATSClient.connect(.init(url: nats.url), name: "test-publisher")
            // Two deliveries of one event: distinct message ids, so JetStream keeps both, as after a publisher crash.
            for _ in 0..<2 {
                try await publisher.publish(
                    subject: "user.created", payload: try event.serializedBytes(), messageID: UUID().uuidString)
            }
            await publisher.close()
            let dropped = await eventually(within: .seconds(10)) {
                email.process.errorOutput.contains("duplicate event dropped")
            }
            #expect(dropped, "\(email.process.errorOutput)")
            #expect(email.process.errorOutput.components(separatedBy: "welcome mail written").count - 1 == 1)
            #expect(mails(in: [directory]) == ["To: Twice <twice@example.com>"])
        }
    }

    /// The claim protocol against a real JetStream bucket: of deliveries racing for one event exactly one
    /// claims it; a claim younger than the lease holds; an older one is taken over; once mailed, it stays mailed.
    @Test func racingDeliveriesClaimAnEventOnceAndAStaleClaimIsTakenOver() async throws {
        let nats = NATSServer(port: try freePort())
        try await nats.start()
        let client = try await NATSClient.connect(.init(url: nats.url), name: "test-claims")
        let bucket = try await client.keyValue(bucket: "TEST_MAILED", ttl: .seconds(600))
        try await cleaningUp({
            await bucket.close()
            await client.close()
            await nats.destroy()
        }) {
            let claims = await withTaskGroup(of: MailClaim.self) { group in
                for _ in 0..<8 { group.addTask { (try? await bucket.claim("race", lease: .seconds(60))) ?? .mailed } }
                return await group.reduce(into: []) { $0.append($1) }
            }
            #expect(claims.filter { $0 == .claimed }.count == 1, "\(claims)")
            #expect(claims.allSatisfy { if case .held = $0 { true } else { $0 == .claimed } }, "\(claims)")

            try await bucket.set("stale", to: MailClaimValue.sending(at: Date().addingTimeInterval(-120)))
            #expect(try await bucket.claim("stale", lease: .seconds(60)) == .claimed)
            guard case .held = try await bucket.claim("stale", lease: .seconds(60)) else {
                Issue.record("the new claim did not hold"); return
            }
            try await bucket.markMailed("stale")
            #expect(try await bucket.claim("stale", lease: .seconds(60)) == .mailed)
            await bucket.release("race")
            #expect(try await bucket.claim("race", lease: .seconds(60)) == .claimed, "a released claim can be taken")
        }
    }

    /// An event NATS refuses for good (over its 1 MB maximum payload) is set aside as a dead letter, and the
    /// events after it are published: one bad event never stops every later mail.
    @Test func anEventNATSRefusesIsDeadLetteredAndTheNextOnesArePublished() async throws {
        let nats = NATSServer(port: try freePort())
        try await nats.start()
        let url = try await PostgresTestDatabase.create()
        let postgres = PostgresClient(configuration: try PostgresURL.configuration(url), backgroundLogger: quietLogger)
        let publisher = try await UserEvents.connect(.init(url: nats.url), name: "test-outbox")
        try await cleaningUp({
            await publisher.close()
            await nats.destroy()
        }) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await postgres.run() }
                defer { group.cancelAll() }
                let repository = PostgresUserRepository(client: postgres, logger: Logger(label: "test"))
                try await repository.migrate()
                let huge = OutboxEvent(
                    id: UUID(), subject: UserEvents.created, payload: Array(repeating: 7, count: 1_500_000))
                let small = OutboxEvent(id: UUID(), subject: UserEvents.created, payload: [1, 2, 3])
                let huger = User(
                    id: UUID().uuidString.lowercased(), name: "Huge", company: "", email: "huge@example.com")
                let smaller = User(
                    id: UUID().uuidString.lowercased(), name: "Small", company: "", email: "small@example.com")
                try await repository.create(huger, passwordHash: "h", event: huge)
                try await repository.create(smaller, passwordHash: "h", event: small)

                let published = try await repository.publishPending(limit: 20) { event in
                    try await publisher.publish(
                        subject: event.subject, payload: event.payload, messageID: event.id.uuidString)
                }
                #expect(published == 1)
                let backlog = try await repository.backlog()
                #expect(backlog.pending == 0 && backlog.deadLettered == 1, "\(backlog)")
                let subscription = try await publisher.pullSubscription(subject: UserEvents.created, durable: "test")
                let messages = try await subscription.fetch(limit: 5, wait: .seconds(2))
                #expect(messages.map(\.payload) == [[1, 2, 3]], "only the small event is in the stream")
                for message in messages { await message.ack() }
                await subscription.close()
            }
        }
    }

    @Test func twoReplicasSendEachWelcomeMailOnce() async throws {
        let nats = NATSServer(port: try freePort())
        try await nats.start()
        let directories = [mailDirectory(), mailDirectory()]
        let user = try await startUserService(nats: nats)
        let first = try await startEmailService(nats: nats, mailDirectory: directories[0])
        let second = try await startEmailService(nats: nats, mailDirectory: directories[1])
        try await cleaningUp({
            for service in [first, second, user] { await service.process.stop() }
            await nats.destroy()
        }) {
            let addresses = (0..<6).map { "user\($0)@example.com" }
            for address in addresses { try await signUp(address, at: user) }
            let all = await eventually(within: .seconds(15)) { mails(in: directories).count >= addresses.count }
            #expect(all)
            // Every event acknowledged: nothing is left to deliver again, so what is mailed now is final.
            #expect(await eventually(within: .seconds(15)) { await everyEventAcknowledged(nats) })
            let sent = mails(in: directories)
            #expect(sent.count == addresses.count, "\(sent)")
            #expect(Set(sent) == Set(addresses.map { "To: New User <\($0)>" }))
        }
    }

    @Test func aMailSentRightBeforeSIGTERMIsAcknowledgedAndNotMailedAgainAfterARestart() async throws {
        let nats = NATSServer(port: try freePort())
        try await nats.start()
        let directory = mailDirectory()
        let user = try await startUserService(nats: nats)
        let email = try await startEmailService(nats: nats, mailDirectory: directory)
        try await cleaningUp({
            await user.process.stop()
            await nats.destroy()
        }) {
            try await signUp("cleo@example.com", at: user)
            #expect(await eventually(within: .seconds(10)) { !mails(in: [directory]).isEmpty })
            email.process.signal(SIGTERM)  // right after the mail: its acknowledgement is what is at stake
            #expect(await email.process.waitForExit() == 0)

            let watcher = try await NATSClient.connect(.init(url: nats.url), name: "test-watcher")
            let state = try await watcher.consumerState(stream: UserEvents.stream, durable: "email-service-users")
            await watcher.close()
            #expect(state.pending == 0 && state.acknowledgementsPending == 0, "\(state)")

            // Subscribed again (SERVING) with nothing pending and nothing awaiting acknowledgement: there is nothing
            // it could mail again.
            let restarted = try await startEmailService(nats: nats, mailDirectory: directory)
            try await restarted.waitUntilServing()
            #expect(await everyEventAcknowledged(nats))
            await restarted.process.stop()
            #expect(!restarted.process.errorOutput.contains("welcome mail written"), "\(restarted.process.errorOutput)")
            #expect(mails(in: [directory]) == ["To: New User <cleo@example.com>"])
        }
    }

    @Test func aMailThatKeepsFailingIsRetriedWithBackOffThenGivenUpAndNoMessageLeaks() async throws {
        let nats = NATSServer(port: try freePort())
        try await nats.start()
        try await cleaningUp({
            await nats.destroy()
        }) {
            // The production mailer, writing where no file can be: every send fails.
            let logs = LogCapture()
            let mailer = FileMailer(directory: "/dev/null/mail", logger: logs.logger())
            let email = EventMailService.services(
                nats: .init(url: nats.url), mailer: mailer,
                policy: DeliveryPolicy(maxDeliveries: 3, retryDelay: .milliseconds(200)),
                server: ServerConfiguration(port: 0, startupTimeout: .seconds(10)), logger: logs.logger())
            let group = ServiceRunner.makeGroup(email.services, shutdownGrace: .seconds(5), logger: logs.logger())
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                let publisher = try await UserEvents.connect(.init(url: nats.url), name: "test-publisher")
                let event = Shippy_Events_UserCreated.with {
                    $0.eventID = "doomed"; $0.userID = "u"; $0.name = "Doomed"; $0.email = "doomed@example.com"
                }
                try await publisher.publish(
                    subject: UserEvents.created, payload: try event.serializedBytes(), messageID: "doomed")
                let gaveUp = await eventually(within: .seconds(20)) {
                    logs.all.contains { $0.contains("giving up on a mail") }
                }
                #expect(gaveUp, "\(logs.all.joined(separator: "\n"))")
                // Terminated: no delivery can follow, so the attempts counted now are all there will be.
                #expect(await eventually(within: .seconds(10)) { await everyEventAcknowledged(nats) })
                let attempts = logs.all.filter { $0.contains("a mail failed") }.count
                #expect(attempts == 3, "tried once per delivery, three deliveries")
                let state = try await publisher.consumerState(stream: UserEvents.stream, durable: "email-service-users")
                #expect(
                    state.pending == 0 && state.acknowledgementsPending == 0, "terminated, not left pending: \(state)")
                await publisher.close()
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
            // The gauge counts the whole test process, where other tests hold messages for a moment; a leaked
            // message never goes, so the gauge must come back to zero, not be zero at this instant.
            let released = await eventually(within: .seconds(10)) { NATSMessage.live == 0 }
            #expect(released, "every message was released: \(NATSMessage.live) still held")
        }
    }
}
