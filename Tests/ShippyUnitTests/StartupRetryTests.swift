import Logging
import ShippyMongo
import ShippyRuntime
import ShippyStorage
import ShippyTestSupport
import Synchronization
import Testing

@Suite struct StartupRetryTests {
    struct Refused: Error {}

    @Test func retriesUntilTheDependencyAnswers() async throws {
        let attempts = Mutex(0)
        let retry = StartupRetry(deadline: .seconds(5), initialDelay: .milliseconds(1), maximumDelay: .milliseconds(4))
        try await retry.run("test dependency", logger: Logger(label: "test")) {
            let attempt = attempts.withLock {
                $0 += 1; return $0
            }
            if attempt < 4 { throw Refused() }
        }
        #expect(attempts.withLock { $0 } == 4)
    }

    @Test func givesUpAtTheDeadlineNamingTheDependency() async throws {
        let retry = StartupRetry(
            deadline: .milliseconds(100), initialDelay: .milliseconds(10), maximumDelay: .milliseconds(20))
        await #expect {
            try await retry.run("MongoDB at mongodb://127.0.0.1:1", logger: Logger(label: "test")) { throw Refused() }
        } throws: { error in
            let description = "\(error)"
            return error is StartupError
                && description.hasPrefix("gave up waiting for MongoDB at mongodb://127.0.0.1:1 after 0.1 s")
        }
    }

    @Test func credentialsAreRedactedFromTheMongoURL() {
        #expect(MongoClient.redact("mongodb://admin:s3cret@db:27017/shippy") == "mongodb://***@db:27017/shippy")
        #expect(MongoClient.redact("mongodb://db:27017") == "mongodb://db:27017")
    }
}

/// The one readiness path's gate.
@Suite struct ReadinessSignalTests {
    @Test func waitersResumeWhenItOpensAndLaterWaitsReturnAtOnce() async throws {
        let signal = ReadinessSignal()
        let waiter = Task { try await signal.wait() }
        try await Task.sleep(for: .milliseconds(50))
        #expect(!signal.isOpen)
        signal.open()
        try await waiter.value
        try await signal.wait()
        #expect(signal.isOpen)
    }

    @Test func aCancelledWaiterThrowsCancellation() async throws {
        let signal = ReadinessSignal()
        let waiter = Task { try await signal.wait() }
        try await Task.sleep(for: .milliseconds(50))
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
    }
}
