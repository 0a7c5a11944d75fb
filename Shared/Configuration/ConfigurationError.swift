/// A configuration value that is missing or malformed; its description is the one line printed at exit.
public struct ConfigurationError: Error, CustomStringConvertible {
    /// The environment variable, e.g. `VESSEL_TIMEOUT`.
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
