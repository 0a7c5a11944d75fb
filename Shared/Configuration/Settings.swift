import Configuration
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Where a process's settings come from, through swift-configuration. The first source that has a key wins:
/// the process's flags, then its environment, then the file named by `CONFIG_FILE` (JSON, or YAML by its
/// `.yaml`/`.yml` name), which is watched while the process runs so that settings marked `reloads` change
/// without a restart.
public final class Settings: Sendable {
    /// The optional configuration file; the only setting that cannot itself come from the file.
    public static let configFile = Setting<String?>.optionalText(
        "config.file",
        "A JSON or YAML file of settings, keys nested by their dots ({\"vessel\": {\"timeout\": 2}}); "
            + "re-read every second and on SIGHUP. Flags and environment variables win over it.")

    /// How often the file is checked for changes.
    public static let pollInterval = 1

    private let reader: ConfigReader
    /// The watched file as a lifecycle service (it polls while it runs); `nil` without `CONFIG_FILE`.
    private let file: (any Service)?
    private let bindings = Mutex<[@Sendable (ConfigSnapshotReader, Logger) -> Void]>([])

    private init(reader: ConfigReader, file: (any Service)?) {
        self.reader = reader
        self.file = file
    }

    /// Settings from `arguments` (`--vessel-timeout 2`), `environment`, and the file it names.
    /// - Throws: `ConfigurationError` naming `CONFIG_FILE` when the file cannot be read or parsed.
    public static func load(
        arguments: [String] = [],
        environment: [String: String] = ProcessInfo.processInfo.environment,
        logger: Logger = Logger(label: "configuration")
    ) async throws(ConfigurationError) -> Settings {
        // The provider expects a program name first and skips it.
        let sources: [any ConfigProvider] = [
            CommandLineArgumentsProvider(arguments: ["shippy"] + arguments),
            EnvironmentVariablesProvider(environmentVariables: environment),
        ]
        let withoutFile = Settings(reader: ConfigReader(providers: sources), file: nil)
        guard let path = try withoutFile.value(configFile) else { return withoutFile }
        let isYAML = path.hasSuffix(".yaml") || path.hasSuffix(".yml")
        let file: any ConfigProvider & Service
        do {
            let location = ConfigReader(
                provider: InMemoryProvider(values: [
                    "filePath": .init(.string(path), isSecret: false),
                    "pollIntervalSeconds": .init(.int(pollInterval), isSecret: false),
                ]))
            file =
                if isYAML {
                    try await ReloadingFileProvider<YAMLSnapshot>(config: location, logger: logger)
                } else {
                    try await ReloadingFileProvider<JSONSnapshot>(config: location, logger: logger)
                }
        } catch {
            throw configFile.error("\"\(path)\" cannot be read as \(isYAML ? "YAML" : "JSON"): \(error)")
        }
        return Settings(reader: ConfigReader(providers: sources + [file]), file: file)
    }

    /// Settings from environment variables only (the CLIs, and tests).
    public static func environment(
        _ environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> Settings {
        Settings(
            reader: ConfigReader(provider: EnvironmentVariablesProvider(environmentVariables: environment)), file: nil)
    }

    /// The setting's current value.
    /// - Throws: `ConfigurationError` naming the setting for a missing required value or a bad one.
    public func value<Value>(_ setting: Setting<Value>) throws(ConfigurationError) -> Value {
        try setting.value(from: Self.raw(setting, in: reader.snapshot()))
    }

    /// `flag`'s value when a command's own option gave one (a CLI's `--address`), else the setting's.
    public func value<Value>(_ setting: Setting<Value>, flag: String?) throws(ConfigurationError) -> Value {
        guard let flag else { return try value(setting) }
        return try setting.value(from: .text(flag))
    }

    /// A reloading setting's value that follows the file: each change is logged (secrets redacted), and a bad
    /// value is logged and the previous one kept.
    /// - Throws: `ConfigurationError` when the value at start is missing or bad.
    public func live<Value>(_ setting: Setting<Value>) throws(ConfigurationError) -> LiveSetting<Value> {
        precondition(setting.reloads, "\(setting.key) is not marked as reloading")
        let live = LiveSetting(try value(setting))
        bindings.withLock {
            $0.append { snapshot, logger in
                let previous = live.value
                do {
                    let current = try setting.value(from: Self.raw(setting, in: snapshot))
                    guard current != previous else { return }
                    live.update(current)
                    logger.notice(
                        "setting changed",
                        metadata: [
                            "key": "\(setting.key)", "from": "\(setting.logged(previous))",
                            "to": "\(setting.logged(current))",
                        ])
                } catch {
                    logger.error(
                        "setting not changed: \(error); keeping the previous value",
                        metadata: ["key": "\(setting.key)", "value": "\(setting.logged(previous))"])
                }
            }
        }
        return live
    }

    /// What runs while the process runs: the file watch and the updates of live settings; none without a file.
    public func services(logger: Logger) -> [(name: String, service: any Service)] {
        guard let file else { return [] }
        return [("configuration-file", file), ("configuration-updates", Updates(settings: self, logger: logger))]
    }

    /// Applies every snapshot of the sources to the live settings.
    private struct Updates: Service {
        let settings: Settings
        let logger: Logger

        func run() async throws {
            try await settings.reader.watchSnapshot { updates in
                for await snapshot in updates.cancelOnGracefulShutdown() {
                    for apply in settings.bindings.withLock({ $0 }) { apply(snapshot, logger) }
                }
            }
        }
    }

    /// The value as the first source holding the key has it: text (environment, flags, YAML), a number
    /// (JSON), or a list (a JSON array, or a flag given a comma-separated list).
    private static func raw<Value>(_ setting: Setting<Value>, in snapshot: ConfigSnapshotReader) -> RawSetting? {
        let key = ConfigKey(setting.key)
        let secret = setting.isSecret
        if let text = snapshot.string(forKey: key, isSecret: secret) { return .text(text) }
        if let number = snapshot.double(forKey: key, isSecret: secret) { return .number(number) }
        if let list = snapshot.stringArray(forKey: key, isSecret: secret) { return .list(list) }
        return nil
    }
}

/// A setting's current value, which the configuration file may change while the process runs.
public final class LiveSetting<Value: Sendable>: Sendable {
    private let current: Mutex<Value>

    /// A value that never changes: for tests, and for wiring without a file.
    public init(_ value: Value) {
        current = Mutex(value)
    }

    public var value: Value { current.withLock { $0 } }

    func update(_ value: Value) {
        current.withLock { $0 = value }
    }
}
