import Foundation
import ShippyDomain

/// A configuration value that is missing or malformed; its description is the one line printed at exit.
public struct ConfigurationError: Error, CustomStringConvertible {
    public var key: String
    public var flag: String?
    public var problem: String

    public init(key: String, flag: String? = nil, problem: String) {
        self.key = key
        self.flag = flag
        self.problem = problem
    }

    public var description: String {
        "invalid configuration: \(key)\(flag.map { " (--\($0))" } ?? ""): \(problem)"
    }
}

/// Reads configuration from environment variables, each overridable by a command-line flag.
///
/// Every reader names the environment key (and flag) in its error, so a bad value is a one-line fix.
public struct ConfigurationReader: Sendable {
    public var environment: [String: String]

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.environment = environment
    }

    /// The flag's value when given, else the environment's, else `nil`.
    public func raw(_ key: String, flag: String?) -> String? {
        flag ?? environment[key]
    }

    /// A non-empty string. Its errors never echo the value, so secrets are read with it too.
    public func string(
        _ key: String,
        flag: (name: String, value: String?)? = nil,
        default defaultValue: String? = nil
    ) throws(ConfigurationError) -> String {
        guard let value = raw(key, flag: flag?.value) ?? defaultValue else {
            throw ConfigurationError(key: key, flag: flag?.name, problem: "is required and has no default")
        }
        guard !value.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw ConfigurationError(key: key, flag: flag?.name, problem: "must not be empty")
        }
        return value
    }

    /// An integer within `range`.
    public func integer(
        _ key: String,
        flag: (name: String, value: String?)? = nil,
        default defaultValue: Int,
        in range: ClosedRange<Int>
    ) throws(ConfigurationError) -> Int {
        guard let text = raw(key, flag: flag?.value) else { return defaultValue }
        guard let value = Int(text.trimmingCharacters(in: .whitespaces)), range.contains(value) else {
            throw ConfigurationError(
                key: key, flag: flag?.name,
                problem: "\"\(text)\" is not an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    /// A duration written in seconds (`60`, `0.5`), within `range` seconds.
    public func seconds(
        _ key: String,
        flag: (name: String, value: String?)? = nil,
        default defaultValue: Duration,
        in range: ClosedRange<Double>
    ) throws(ConfigurationError) -> Duration {
        guard let text = raw(key, flag: flag?.value) else { return defaultValue }
        guard let value = Double(text.trimmingCharacters(in: .whitespaces)), value.isFinite, range.contains(value)
        else {
            throw ConfigurationError(
                key: key, flag: flag?.name,
                problem: "\"\(text)\" is not a number of seconds from \(range.lowerBound) to \(range.upperBound)")
        }
        return .milliseconds(Int64((value * 1000).rounded()))
    }

    /// A comma-separated list of email addresses, lowercased; empty when not set.
    public func emailList(
        _ key: String, flag: (name: String, value: String?)? = nil
    ) throws(ConfigurationError)
        -> Set<String>
    {
        guard let text = raw(key, flag: flag?.value) else { return [] }
        var emails: Set<String> = []
        for item in text.split(separator: ",") {
            let email = item.trimmingCharacters(in: .whitespaces)
            guard NewUser.isPlausibleEmail(email) else {
                throw ConfigurationError(
                    key: key, flag: flag?.name, problem: "\"\(email.prefix(254))\" is not an email address")
            }
            emails.insert(email.lowercased())
        }
        return emails
    }

    /// One of a fixed set of words.
    public func choice<Choice: RawRepresentable & CaseIterable>(
        _ key: String,
        flag: (name: String, value: String?)? = nil,
        default defaultValue: Choice
    ) throws(ConfigurationError) -> Choice where Choice.RawValue == String {
        guard let text = raw(key, flag: flag?.value) else { return defaultValue }
        guard let value = Choice(rawValue: text.lowercased()) else {
            let choices = Choice.allCases.map(\.rawValue).joined(separator: ", ")
            throw ConfigurationError(key: key, flag: flag?.name, problem: "\"\(text)\" is not one of \(choices)")
        }
        return value
    }
}

/// A yes/no setting, written `true` or `false`.
public enum Toggle: String, CaseIterable, Sendable {
    case `true`, `false`
}
