import ArgumentParser
import Logging
import ShippyConfiguration
import ShippyContracts
import ShippyRuntime

/// `email-service`: welcomes new users, from the `user.created` events on NATS.
@main
struct EmailServiceCommand: AsyncParsableCommand, ServiceIdentity {
    static let name = "email-service"
    static let defaultPort = 50054

    static let configuration = CommandConfiguration(
        commandName: name,
        abstract: "Sends the welcome mail for each user.created event (NATS JetStream); serves only grpc.health.v1.",
        discussion: "Every flag overrides the environment variable named in its help. Exit status: 0 after a "
            + "graceful shutdown, 1 on a bad configuration or a failure at start, 64 on bad usage.",
        subcommands: [Serve.self, HealthcheckCommand<EmailServiceCommand>.self],
        defaultSubcommand: Serve.self
    )
}

/// `email-service [serve]`.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the service (the default).")

    enum MailerKind: String, CaseIterable {
        case log, files
    }

    @OptionGroup var server: ServerOptions

    @Option(help: "NATS server (env NATS_URL, default nats://127.0.0.1:4222).")
    var natsURL: String?

    @Option(help: "log (one log line per mail) or files (.eml files in MAIL_DIR) (env MAILER, default log).")
    var mailer: String?

    @Option(help: "Folder for .eml files when MAILER=files (env MAIL_DIR).")
    var mailDir: String?

    @Option(help: "Deliveries of a failing welcome mail before it is given up (env MAIL_MAX_DELIVERIES, default 5).")
    var mailMaxDeliveries: String?

    @Option(help: "Seconds before a failed mail is tried again, doubling each time (env MAIL_RETRY_DELAY, default 2).")
    var mailRetryDelay: String?

    func run() async throws {
        let reader = ConfigurationReader()
        let server = try self.server.resolve(defaultPort: EmailServiceCommand.defaultPort, reader)
        let natsURL = try reader.string("NATS_URL", flag: ("nats-url", natsURL), default: "nats://127.0.0.1:4222")
        let kind = try reader.choice("MAILER", flag: ("mailer", mailer), default: MailerKind.log)
        let mailDirectory = kind == .files ? try reader.string("MAIL_DIR", flag: ("mail-dir", mailDir)) : nil
        let policy = DeliveryPolicy(
            maxDeliveries: try reader.integer(
                "MAIL_MAX_DELIVERIES", flag: ("mail-max-deliveries", mailMaxDeliveries), default: 5, in: 1...1_000),
            retryDelay: try reader.seconds(
                "MAIL_RETRY_DELAY", flag: ("mail-retry-delay", mailRetryDelay), default: .seconds(2), in: 0.01...3_600))
        try await ServiceRunner.run(EmailServiceCommand.name, configuration: server) { logger in
            let mailer: any Mailer =
                if let mailDirectory { FileMailer(directory: mailDirectory, logger: logger) } else {
                    LogMailer(logger: logger)
                }
            return WelcomeMailService.services(
                natsURL: natsURL, mailer: mailer, policy: policy, server: server, logger: logger
            ).services
        }
    }
}
