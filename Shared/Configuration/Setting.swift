import Foundation
import ShippyDomain

/// A setting as help text, errors and the reload log show it, whatever the type of its value.
public protocol SettingDescription: Sendable {
    /// The one name of the setting, dotted: `vessel.timeout`. Its environment variable, its flag and its
    /// place in the configuration file all follow from it.
    var key: String { get }
    var summary: String { get }
    /// How the help shows the default; `nil` for a required setting.
    var defaultText: String? { get }
    /// Never logged or echoed in an error, and never a flag (flags show in `ps`).
    var isSecret: Bool { get }
    /// Takes effect while the process runs when the configuration file changes.
    var reloads: Bool { get }
}

extension SettingDescription {
    /// `VESSEL_TIMEOUT` for `vessel.timeout`.
    public var environmentName: String { key.uppercased().replacingOccurrences(of: ".", with: "_") }

    /// `vessel-timeout` for `vessel.timeout`; secrets have none.
    public var flagName: String? { isSecret ? nil : key.replacingOccurrences(of: ".", with: "-") }

    /// `VESSEL_TIMEOUT (--vessel-timeout)`: how errors name it.
    public var displayName: String { environmentName + (flagName.map { " (--\($0))" } ?? "") }

    /// One entry of a command's help.
    public var helpEntry: String {
        var notes = [defaultText.map { "default \($0)" } ?? "required"]
        if reloads { notes.append("reloads") }
        if isSecret { notes.append("secret, no flag") }
        let names = [flagName.map { "--\($0)" }, environmentName, key].compactMap { $0 }
        return "\(names.joined(separator: " | ")) (\(notes.joined(separator: "; "))): \(summary)"
    }
}

/// A value as its source holds it: text (environment, flags, YAML), a number (JSON), or a list.
public enum RawSetting: Sendable, CustomStringConvertible {
    case text(String)
    case number(Double)
    case list([String])

    public var description: String {
        switch self {
        case .text(let text): "\"\(text)\""
        case .number(let number): number == number.rounded() && abs(number) < 1e15 ? "\(Int(number))" : "\(number)"
        case .list(let items): "[\(items.joined(separator: ", "))]"
        }
    }

    /// The text of a number as well, so that `5` in JSON and `"5"` in the environment read alike.
    var text: String? {
        switch self {
        case .text(let text): text.trimmingCharacters(in: .whitespaces)
        case .number: description
        case .list(let items): items.count == 1 ? items[0].trimmingCharacters(in: .whitespaces) : nil
        }
    }

    /// Text as written (passwords and keys keep their spaces).
    var verbatim: String? {
        if case .text(let text) = self { return text }
        return self.text
    }
}

/// Why a value was refused: it is not what the setting expects, or a problem of its own.
public enum SettingProblem: Error, Sendable {
    /// The value is not `expectation` (e.g. "an integer from 0 to 65535").
    case isNot(String)
    case other(String)
}

/// One typed setting, declared once: its key, default, help, and how its value is read and checked.
public struct Setting<Value: Sendable & Equatable>: SettingDescription {
    public let key: String
    public let summary: String
    /// `nil` for a required setting.
    public let defaultValue: Value?
    public let defaultText: String?
    public let isSecret: Bool
    public let reloads: Bool
    let decode: @Sendable (RawSetting) throws(SettingProblem) -> Value
    /// How a value appears in the reload log.
    let show: @Sendable (Value) -> String

    public init(
        _ key: String,
        default defaultValue: Value?,
        defaultText: String? = nil,
        secret: Bool = false,
        reloads: Bool = false,
        _ summary: String,
        show: @escaping @Sendable (Value) -> String = { "\($0)" },
        decode: @escaping @Sendable (RawSetting) throws(SettingProblem) -> Value
    ) {
        self.key = key
        self.summary = summary
        self.defaultValue = defaultValue
        self.defaultText = defaultText ?? defaultValue.map(show)
        self.isSecret = secret
        self.reloads = reloads
        self.show = show
        self.decode = decode
    }

    /// The value in `raw`, or the default when there is none.
    /// - Throws: `ConfigurationError` naming the setting, for a missing required value or a bad one; a bad value
    ///   is never replaced by the default.
    public func value(from raw: RawSetting?) throws(ConfigurationError) -> Value {
        guard let raw else {
            guard let defaultValue else { throw error("is required and has no default") }
            return defaultValue
        }
        do {
            return try decode(raw)
        } catch {
            switch error {
            case .isNot(let expectation):
                throw self.error(isSecret ? "is not \(expectation)" : "\(raw) is not \(expectation)")
            case .other(let problem): throw self.error(problem)
            }
        }
    }

    /// How the reload log shows `value`.
    public func logged(_ value: Value) -> String { isSecret ? "<redacted>" : show(value) }

    public func error(_ problem: String) -> ConfigurationError {
        ConfigurationError(key: environmentName, flag: flagName, problem: problem)
    }
}

// MARK: - The kinds of setting

extension Setting where Value == String {
    /// Text that is not blank; secrets (passwords, keys, URLs with credentials) are marked so.
    public static func text(
        _ key: String, default defaultValue: String? = nil, secret: Bool = false, _ summary: String
    ) -> Setting {
        Setting(key, default: defaultValue, secret: secret, summary) { raw throws(SettingProblem) in
            guard let text = raw.verbatim else { throw .isNot("text") }
            guard !text.trimmingCharacters(in: .whitespaces).isEmpty else { throw .other("must not be empty") }
            return text
        }
    }
}

extension Setting where Value == String? {
    /// Text that may be absent (no default, not required).
    public static func optionalText(_ key: String, secret: Bool = false, _ summary: String) -> Setting {
        Setting(key, default: .some(nil), defaultText: "none", secret: secret, summary) { raw throws(SettingProblem) in
            guard let text = raw.verbatim else { throw .isNot("text") }
            guard !text.trimmingCharacters(in: .whitespaces).isEmpty else { throw .other("must not be empty") }
            return text
        }
    }
}

extension Setting where Value == Int {
    public static func integer(
        _ key: String, default defaultValue: Int, defaultText: String? = nil, in range: ClosedRange<Int>,
        reloads: Bool = false, _ summary: String
    ) -> Setting {
        Setting(key, default: defaultValue, defaultText: defaultText, reloads: reloads, summary) {
            raw throws(SettingProblem) in
            guard let value = raw.text.flatMap({ Int($0) }), range.contains(value) else {
                throw .isNot("an integer from \(range.lowerBound) to \(range.upperBound)")
            }
            return value
        }
    }
}

extension Setting where Value == Duration {
    /// A duration written in seconds (`60`, `0.5`).
    public static func seconds(
        _ key: String, default defaultValue: Duration, in range: ClosedRange<Double>, reloads: Bool = false,
        _ summary: String
    ) -> Setting {
        Setting(
            key, default: defaultValue, reloads: reloads, summary,
            show: { RawSetting.number(Double($0.milliseconds) / 1000).description }
        ) { raw throws(SettingProblem) in
            guard let value = raw.text.flatMap({ Double($0) }), value.isFinite, range.contains(value) else {
                throw .isNot(
                    "a number of seconds from \(RawSetting.number(range.lowerBound)) to \(RawSetting.number(range.upperBound))"
                )
            }
            return .milliseconds(Int64((value * 1000).rounded()))
        }
    }
}

extension Setting where Value == Bool {
    /// `true` or `false` (JSON booleans too).
    public static func toggle(_ key: String, default defaultValue: Bool, _ summary: String) -> Setting {
        Setting(key, default: defaultValue, summary) { raw throws(SettingProblem) in
            switch raw {
            case .number(1): return true
            case .number(0): return false
            default:
                guard let value = raw.text.flatMap({ Bool($0.lowercased()) }) else { throw .isNot("true or false") }
                return value
            }
        }
    }
}

extension Setting {
    /// One of a fixed set of words, in any letter case.
    public static func choice(
        _ key: String, default defaultValue: Value, reloads: Bool = false, _ summary: String
    ) -> Setting where Value: RawRepresentable & CaseIterable, Value.RawValue == String {
        let choices = Value.allCases.map(\.rawValue).joined(separator: ", ")
        return Setting(key, default: defaultValue, reloads: reloads, summary, show: { $0.rawValue }) {
            raw throws(SettingProblem) in
            guard let value = raw.text.flatMap({ Value(rawValue: $0.lowercased()) }) else {
                throw .isNot("one of \(choices)")
            }
            return value
        }
    }
}
