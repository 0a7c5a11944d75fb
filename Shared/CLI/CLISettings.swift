import ArgumentParser
import ShippyConfiguration

/// The settings the CLIs read from the environment; an option of the command (`--address`) wins.
public enum CLISettings {
    public static let userService = Setting.text(
        "user.service.address", default: "127.0.0.1:50053", "user-service address")
    public static let consignmentService = Setting.text(
        "consignment.service.address", default: "127.0.0.1:50051", "consignment-service address")
    public static let vesselService = Setting.text(
        "vessel.service.address", default: "127.0.0.1:50052", "vessel-service address")
    public static let token = Setting<String?>.optionalText(
        "shippy.token", secret: true, "the token from `user-cli login`")
    public static let password = Setting<String?>.optionalText("shippy.password", secret: true, "the password")

    /// Help for the option that overrides `setting`: its summary, environment variable and default.
    public static func help<Value>(_ setting: Setting<Value>) -> ArgumentHelp {
        ArgumentHelp(
            "\(setting.summary.prefix(1).uppercased() + setting.summary.dropFirst()) (env \(setting.environmentName)"
                + "\(setting.defaultText.map { ", default \($0)" } ?? ""))."
        )
    }

    /// The option's value, else the environment's, else the default.
    /// - Throws: `ConfigurationError` (exit 64 through `runCLI`) for a bad value.
    public static func value<Value>(_ setting: Setting<Value>, option: String? = nil) throws -> Value {
        try Settings.environment().value(setting, flag: option)
    }
}
