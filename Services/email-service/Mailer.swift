import Foundation
import Logging

/// A mail to a user, answering one event: the welcome mail of a new user, the notice that someone signed up
/// again with an existing user's address, a consignment's booking confirmation or its cancellation notice.
struct EventMail: Sendable, Equatable {
    /// What a consignment's mails say of it.
    struct Shipment: Sendable, Equatable {
        var consignmentID: String
        var vesselID: String
        var description = ""
        var containers = 0
        var weight = 0
    }

    enum Kind: Sendable, Equatable {
        /// `user.created`.
        case welcome
        /// `user.signup_repeated`: the sign-up's answer did not tell its sender, so the owner is told here.
        case signUpRepeated
        /// `consignment.booked`.
        case booked(Shipment)
        /// `consignment.cancelled`; `forced` when an admin cancelled it.
        case cancelled(Shipment, forced: Bool)

        /// How the log names it ("welcome mail written" is what tests and the chaos campaign count).
        var logName: String {
            switch self {
            case .welcome: "welcome mail"
            case .signUpRepeated: "sign-up notice"
            case .booked: "booking confirmation"
            case .cancelled: "cancellation notice"
            }
        }
    }

    /// The event it answers; a mail is sent once per event id.
    var eventID: String
    var recipient: String
    var name: String
    var kind: Kind = .welcome

    var subject: String {
        switch kind {
        case .welcome: "Welcome to Shippy, \(name)!"
        case .signUpRepeated: "Someone tried to sign up to Shippy with your address"
        case .booked(let shipment): "Consignment \(shipment.consignmentID) is booked on \(shipment.vesselID)"
        case .cancelled(let shipment, _): "Consignment \(shipment.consignmentID) is cancelled"
        }
    }

    var body: String {
        switch kind {
        case .welcome:
            """
            Hello \(name),

            Your Shippy account is ready. Log in with `user-cli login --email \(recipient)` and ship your first
            consignment with `consignment-cli consignment.json "$TOKEN"`.

            The Shippy team
            """
        case .signUpRepeated:
            """
            Hello \(name),

            Someone signed up to Shippy with \(recipient), which already has an account: yours. No second account
            was made, and yours is unchanged. If it was you, log in with `user-cli login --email \(recipient)`.
            If it was not, there is nothing to do.

            The Shippy team
            """
        case .booked(let shipment):
            """
            Hello \(name),

            Your consignment \(shipment.consignmentID) is booked on vessel \(shipment.vesselID): \
            \(shipment.containers) container(s), \(shipment.weight) kg.
            Description: \(shipment.description)

            See it with `consignment-cli get \(shipment.consignmentID)`; cancel it, while it is booked, with
            `consignment-cli cancel \(shipment.consignmentID)`.

            The Shippy team
            """
        case .cancelled(let shipment, let forced):
            """
            Hello \(name),

            Your consignment \(shipment.consignmentID) is cancelled\(forced ? " by a Shippy administrator" : ""), \
            and its room on vessel \(shipment.vesselID) is given back.\
            \(forced ? " If you did not expect this, reply to ask why." : "")

            The Shippy team
            """
        }
    }
}

/// Sends mail. The email service's only side effect goes through here.
protocol Mailer: Sendable {
    func send(_ mail: EventMail) async throws
}

/// The default mailer: one structured log line per mail (recipient, subject), no mail server needed.
struct LogMailer: Mailer {
    let logger: Logger

    func send(_ mail: EventMail) async throws {
        logger.info(
            "\(mail.kind.logName) sent",
            metadata: ["event_id": "\(mail.eventID)", "recipient": "\(mail.recipient)", "subject": "\(mail.subject)"])
    }
}

/// Writes each mail as an RFC 5322 `.eml` file named after its event id into a folder: what a mail
/// catcher would hold, and what tests read.
struct FileMailer: Mailer {
    let directory: String
    let logger: Logger

    func send(_ mail: EventMail) async throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = "\(directory)/\(mail.eventID).eml"
        let message = """
            From: Shippy <welcome@shippy.example>\r
            To: \(MailHeader.displayName(mail.name)) <\(mail.recipient)>\r
            Subject: \(MailHeader.encoded(mail.subject))\r
            Message-ID: <\(mail.eventID)@shippy.example>\r
            Content-Type: text/plain; charset=utf-8\r
            \r
            \(mail.body.replacingOccurrences(of: "\n", with: "\r\n"))\r

            """
        // Written aside, then linked into place: a reader never sees half a mail, and an event's mail
        // that already exists is not written twice.
        let temporary = "\(path).\(UUID().uuidString).tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(message.utf8)) else {
            throw CocoaError(.fileWriteUnknown)
        }
        defer { unlink(temporary) }
        if link(temporary, path) == 0 {
            logger.info(
                "\(mail.kind.logName) written",
                metadata: ["event_id": "\(mail.eventID)", "recipient": "\(mail.recipient)", "path": "\(path)"])
        }
    }
}

/// Header values built from what users typed. The user service already refuses control characters in names,
/// but a header must be safe whatever it holds: anything beyond plain printable ASCII is written as RFC 2047
/// encoded words, which no mail reader can take for a line break or another header.
enum MailHeader {
    /// Specials that end a display name (RFC 5322 §3.2.3) unless it is quoted or encoded.
    private static let specials = Set("()<>[]:;@\\,.\"".utf8)

    /// A display name for `To:`: as it is when it is plain, else encoded.
    static func displayName(_ name: String) -> String {
        name.utf8.allSatisfy { (0x20...0x7E).contains($0) && !specials.contains($0) } ? name : encodedWords(name)
    }

    /// An unstructured value (`Subject:`): as it is when it is printable ASCII, else encoded.
    static func encoded(_ value: String) -> String {
        value.utf8.allSatisfy { (0x20...0x7E).contains($0) } ? value : encodedWords(value)
    }

    /// `=?UTF-8?B?…?=` words of at most 75 characters each (45 bytes of text apiece, cut between characters),
    /// folded onto continuation lines.
    static func encodedWords(_ text: String) -> String {
        var words: [String] = []
        var chunk: [UInt8] = []
        for character in text {
            let bytes = Array(String(character).utf8)
            if chunk.count + bytes.count > 45, !chunk.isEmpty {
                words.append(word(chunk))
                chunk = []
            }
            chunk += bytes
        }
        if !chunk.isEmpty || words.isEmpty { words.append(word(chunk)) }
        return words.joined(separator: "\r\n ")
    }

    private static func word(_ bytes: [UInt8]) -> String {
        "=?UTF-8?B?\(Data(bytes).base64EncodedString())?="
    }
}
