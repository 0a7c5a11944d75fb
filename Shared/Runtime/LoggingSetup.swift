import Foundation
import Logging
import ShippyConfiguration
import ShippyTelemetry
import Synchronization

/// Process-wide logging: human-readable text for a terminal, one JSON object per line for collectors, at a
/// level that the configuration file may change while the process runs.
public enum LoggingSetup {
    private static let current = Mutex<(format: ServerConfiguration.LogFormat, level: LiveSetting<Logger.Level>)>(
        (.text, LiveSetting(.info)))
    private static let installed: Void = LoggingSystem.bootstrap(
        { label, metadataProvider in ProcessLogHandler(label: label, metadataProvider: metadataProvider) },
        metadataProvider: Telemetry.logMetadata)

    /// Installs the process's log handler (each line written inside a span carries `trace_id` and `span_id`), once per process (swift-log allows one bootstrap): loggers made from
    /// then on, even before the settings are read, follow `configure`.
    public static func install() {
        _ = installed
    }

    /// Sets the format and the level of every logger of the process.
    public static func configure(format: ServerConfiguration.LogFormat, level: LiveSetting<Logger.Level>) {
        install()
        current.withLock { $0 = (format, level) }
    }

    /// Writes each event in the configured format, when its level passes the live one.
    private struct ProcessLogHandler: LogHandler {
        let label: String
        var metadata: Logger.Metadata = [:]
        var metadataProvider: Logger.MetadataProvider?

        var logLevel: Logger.Level {
            get { current.withLock { $0.level }.value }
            set {}  // the process's level is the configured one
        }

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            var handler: any LogHandler =
                switch current.withLock({ $0.format }) {
                case .text: StreamLogHandler.standardError(label: label)
                case .json: JSONLogHandler(label: label)
                }
            handler.metadata = metadata
            handler.metadataProvider = metadataProvider
            handler.logLevel = .trace
            handler.log(event: event)
        }
    }
}

/// Writes each log event as one JSON line: `ts`, `level`, `logger`, `msg`, then the metadata keys.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public var logLevel: Logger.Level = .info
    private let label: String
    private let write: @Sendable (String) -> Void

    /// - Parameter write: Where finished lines go; standard error unless a test captures them.
    public init(label: String, write: @escaping @Sendable (String) -> Void = JSONLogHandler.standardError) {
        self.label = label
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields: [String: String] = [:]
        let merged = metadata.merging(metadataProvider?.get() ?? [:]) { $1 }.merging(event.metadata ?? [:]) { $1 }
        for (key, value) in merged { fields[key] = value.description }
        fields["ts"] = Date().formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true))
        fields["level"] = event.level.rawValue
        fields["logger"] = label
        fields["msg"] = event.message.description
        guard let data = try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys]) else { return }
        write(String(decoding: data, as: UTF8.self))
    }

    @Sendable public static func standardError(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
