import Logging
import ShippyRuntime
import Synchronization

/// Collects every line a logger writes, in the JSON format the services use in production.
final class LogCapture: Sendable {
    private let lines = Mutex<[String]>([])

    var all: [String] { lines.withLock { $0 } }

    func logger(_ label: String = "test") -> Logger {
        Logger(label: label) { label in
            var handler = JSONLogHandler(label: label) { line in self.lines.withLock { $0.append(line) } }
            handler.logLevel = .trace
            return handler
        }
    }
}
