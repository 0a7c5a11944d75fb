import ArgumentParser
import Logging
import ServiceLifecycle
import ShippyConfiguration
import ShippyContracts
import ShippyMessaging
import ShippyRuntime

/// The entry of `email-service`, for its executable and for `shippy`: nil runs it with the process's arguments.
public func emailServiceMain(_ arguments: [String]? = nil) async { await EmailServiceCommand.main(arguments) }

/// `email-service`: mails users for their events on NATS (`user.*`, `consignment.*`).
struct EmailServiceCommand: AsyncParsableCommand, ServiceIdentity {
    static let name = "email-service"
    static let defaultPort = 50054
    static let defaultMetricsPort = 9054
    static let settings =
        ServerSettings.all(defaultPort: defaultPort, defaultMetricsPort: defaultMetricsPort)
        + [SharedSettings.natsURL, SharedSettings.natsAuthorities, mailer, mailDir, mailMaxDeliveries, mailRetryDelay]

    static let configuration = serviceCommand(
        abstract: "Mails users for their events on NATS JetStream (welcome, sign-up notice, booking confirmation, "
            + "cancellation notice); serves only grpc.health.v1.")

    enum MailerKind: String, CaseIterable {
        case log, files
    }

    static let mailer = Setting<MailerKind>.choice(
        "mailer", default: .log, "log (one log line per mail) or files (.eml files in MAIL_DIR).")
    static let mailDir = Setting<String?>.optionalText(
        "mail.dir", "Folder for .eml files; required when MAILER is files.")
    static let mailMaxDeliveries = Setting.integer(
        "mail.max.deliveries", default: 5, in: 1...1_000, "Deliveries of a failing mail before it is given up.")
    static let mailRetryDelay = Setting.seconds(
        "mail.retry.delay", default: .seconds(2), in: 0.01...3_600,
        "Seconds before a failed mail is tried again, doubling each time.")

    static func services(
        _ settings: Settings, server: ServerConfiguration, logger: Logger
    ) async throws
        -> [(name: String, service: any Service)]
    {
        var mailDirectory: String?
        if try settings.value(mailer) == .files {
            guard let directory = try settings.value(mailDir) else {
                throw mailDir.error("is required when MAILER is files")
            }
            mailDirectory = directory
        }
        let policy = DeliveryPolicy(
            maxDeliveries: try settings.value(mailMaxDeliveries), retryDelay: try settings.value(mailRetryDelay))
        let mailer: any Mailer =
            if let mailDirectory { FileMailer(directory: mailDirectory, logger: logger) } else {
                LogMailer(logger: logger)
            }
        return EventMailService.services(
            nats: NATSEndpoint(
                url: try settings.value(SharedSettings.natsURL),
                authorities: try settings.value(SharedSettings.natsAuthorities)),
            mailer: mailer, policy: policy, server: server,
            logger: logger
        ).services
    }
}
