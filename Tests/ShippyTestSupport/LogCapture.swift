import Logging
import ShippyRuntime
import Synchronization

/// Collects every line a logger writes, in the JSON format the services use in production.
package final class LogCapture: Sendable {
    package init() {}

    private let lines = Mutex<[String]>([])

    package var all: [String] { lines.withLock { $0 } }

    package func logger(_ label: String = "test") -> Logger {
        Logger(label: label) { label in
            var handler = JSONLogHandler(label: label) { line in self.lines.withLock { $0.append(line) } }
            handler.logLevel = .trace
            return handler
        }
    }
}
