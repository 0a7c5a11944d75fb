import ArgumentParser
import GRPCNIOTransportHTTP2
import ShippyConfiguration
import ShippyDiscovery

/// The settings the CLIs read from the environment; an option of the command (`--address`) wins.
public enum CLISettings {
    public static let token = Setting<String?>.optionalText(
        "shippy.token", secret: true, "the token from `user-cli login`")
    public static let password = Setting<String?>.optionalText("shippy.password", secret: true, "the password")

    /// Help for the option that overrides `setting`: its summary, environment variable and default.
    public static func help<Value>(_ setting: Setting<Value>) -> ArgumentHelp {
        ArgumentHelp(
            "\(sentence(setting.summary)) (env \(setting.environmentName)"
                + "\(setting.defaultText.map { ", default \($0)" } ?? ""))."
        )
    }

    /// The summary as the start of a help sentence: capitalised, without its closing full stop.
    private static func sentence(_ summary: String) -> String {
        let text = summary.hasSuffix(".") ? summary.dropLast() : Substring(summary)
        return text.prefix(1).uppercased() + text.dropFirst()
    }

    /// How the CLI dials: mutual TLS with the certificate, key and authorities the environment names
    /// (`TLS_CERTIFICATE`, `TLS_KEY`, `TLS_CA`), else plaintext.
    /// - Throws: `ConfigurationError` (exit 64 through `runCLI`) when only some are set.
    public static func security() throws -> HTTP2ClientTransport.Posix.TransportSecurity {
        try TLSFiles.configured(in: Settings.environment())?.client ?? .plaintext
    }

    /// The option's value, else the environment's, else the default.
    /// - Throws: `ConfigurationError` (exit 64 through `runCLI`) for a bad value.
    public static func value<Value>(_ setting: Setting<Value>, option: String? = nil) throws -> Value {
        try Settings.environment().value(setting, flag: option)
    }
}
