import ArgumentParser
import Foundation
import GRPCCore
import ShippyCLI
import ShippyConfiguration
import ShippyContracts
import ShippyDiscovery

/// The entry of `consignment-cli`, for its executable and for `shippy`: nil runs it with the process's arguments.
public func consignmentCLIMain(_ arguments: [String]? = nil) async { await ConsignmentCLI.main(arguments) }

/// `consignment-cli [ship] [FILE] [TOKEN]`: create a consignment from a JSON file, then list the caller's
/// consignments; `get ID` and `cancel ID` for one consignment.
struct ConsignmentCLI: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consignment-cli",
        abstract: "Ship a consignment (book it on a vessel, then list yours), show one, or cancel one.",
        discussion: """
            Examples:
              consignment-cli consignment.json "$TOKEN"
              SHIPPY_TOKEN=$(user-cli login --email ewan@example.com) consignment-cli
              user-cli login --email ewan@example.com | consignment-cli --token-file - consignment.json
              consignment-cli get 1d7f3f39-a082-461b-9491-00eea5c77463
              consignment-cli cancel 1d7f3f39-a082-461b-9491-00eea5c77463

            The token comes from the TOKEN argument, else --token-file (- for stdin), else SHIPPY_TOKEN, else the
            login `user-cli login` kept (refreshed when it is about to expire; user-cli logout ends it).
            An admin may get and cancel anyone's consignment (a forced cancel, recorded as theirs).
            Exit status: 0 ok, 64 bad usage or no token, 65 invalid file or input, or no such consignment of yours
            (get, cancel), 66 file missing, 69 a service is down or too slow, 70 service error, 77 token missing,
            malformed or expired.
            """,
        subcommands: [Ship.self, Get.self, Cancel.self],
        defaultSubcommand: Ship.self
    )
}

/// Where consignment-service is, how long to wait, and whose token to send.
struct ConsignmentConnection: ParsableArguments {
    @Argument(help: "The token from `user-cli login` (or --token-file, SHIPPY_TOKEN, or the kept login).")
    var token: String?

    @Option(help: "Read the token from this file (- for stdin).")
    var tokenFile: String?

    @Option(help: CLISettings.help(SharedSettings.consignmentServiceAddress))
    var address: String?

    @Option(help: "Seconds to wait for each answer.")
    var timeout: Double = 10

    /// Runs `body` with a client and the caller's token; failures become one line and an exit status.
    func withShippingService(
        _ body: (Consignment_ShippingService.Client<ServiceTransport>, Metadata, CallOptions) async throws -> Void
    ) async {
        await runCLI(
            tool: "consignment-cli", service: "consignment-service", address: SharedSettings.consignmentServiceAddress,
            option: address
        ) { address in
            let token = try await TokenInput.current(
                argument: token, file: tokenFile, timeout: .milliseconds(Int64(timeout * 1000)))
            let target = try ServiceAddress.target(address, key: "--address")
            var options = CallOptions.defaults
            options.timeout = .milliseconds(Int64(timeout * 1000))
            try await withGRPCClient(
                transport: ServiceTransport(
                    main: target, serviceConfig: RetryPolicies.serviceConfig(), security: try CLISettings.security())
            ) {
                client in
                try await body(
                    Consignment_ShippingService.Client(wrapping: client), ["authorization": "Bearer \(token)"], options)
            }
        }
    }
}

/// `consignment-cli [ship] [FILE] [TOKEN]`: the original CLI's call, create then list.
struct Ship: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create a consignment from a JSON file, then list yours (the default).")

    @Argument(help: "The consignment JSON file (- for stdin).")
    var file: String = "consignment.json"

    @OptionGroup var connection: ConsignmentConnection

    @Flag(help: "Print machine-readable JSON instead of text.")
    var json = false

    @Option(help: "Idempotency key: running again with the same key books once (default: a new key for each run).")
    var idempotencyKey: String?

    func run() async throws {
        await connection.withShippingService { shipping, metadata, options in
            let request = try ConsignmentFile.load(file).request
            var create = metadata
            // Run again with the same --idempotency-key after a failure, and the consignment is booked once.
            create.addString(idempotencyKey ?? UUID().uuidString.lowercased(), forKey: "idempotency-key")
            let created = try await shipping.createConsignment(request, metadata: create, options: options)
            let listed = try await allPages { token in
                let page = try await shipping.getConsignments(
                    .with { $0.pageToken = token }, metadata: metadata, options: options)
                return (page.consignments, page.nextPageToken)
            }
            print(
                json
                    ? Report.json(created: created.consignment, listed: listed)
                    : Report.text(created: created.consignment, listed: listed))
        }
    }
}

/// `consignment-cli get ID [TOKEN]`: one consignment, with its status.
struct Get: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show one consignment, with its status.")

    @Argument(help: "The consignment's id.")
    var id: String

    @OptionGroup var connection: ConsignmentConnection

    @Flag(help: "Print machine-readable JSON instead of text.")
    var json = false

    func run() async throws {
        await connection.withShippingService { shipping, metadata, options in
            let answer = try await shipping.getConsignment(.with { $0.id = id }, metadata: metadata, options: options)
            print(json ? Report.json(answer.consignment) : Report.text(answer.consignment))
        }
    }
}

/// `consignment-cli cancel ID [TOKEN]`: cancels a booked consignment and gives its room back.
struct Cancel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Cancel a consignment and give its vessel room back; cancelling it again changes nothing.")

    @Argument(help: "The consignment's id.")
    var id: String

    @OptionGroup var connection: ConsignmentConnection

    @Flag(help: "Print machine-readable JSON instead of text.")
    var json = false

    func run() async throws {
        await connection.withShippingService { shipping, metadata, options in
            let answer = try await shipping.cancelConsignment(
                .with { $0.id = id }, metadata: metadata, options: options)
            print(json ? Report.json(answer.consignment) : "Cancelled " + Report.text(answer.consignment))
        }
    }
}

/// How results are printed.
enum Report {
    static func text(created: Consignment_Consignment, listed: [Consignment_Consignment]) -> String {
        var lines = [
            "Created consignment \(created.id)",
            "  vessel:      \(created.vesselID)",
            "  description: \(created.description_p)",
            "  weight:      \(created.weight) kg",
            "  containers:  \(created.containers.count)",
        ]
        lines += created.containers.map { "    - customer \($0.customerID) from \($0.origin)" }
        lines.append("Your consignments (\(listed.count)):")
        lines += listed.map {
            "  \($0.id)  \(status($0))  vessel \($0.vesselID)  \($0.weight) kg  \($0.containers.count) containers  "
                + $0.description_p
        }
        return lines.joined(separator: "\n")
    }

    /// One consignment, a field a line.
    static func text(_ consignment: Consignment_Consignment) -> String {
        var lines = [
            "consignment \(consignment.id)",
            "  status:      \(status(consignment))",
            "  vessel:      \(consignment.vesselID)",
            "  description: \(consignment.description_p)",
            "  weight:      \(consignment.weight) kg",
            "  containers:  \(consignment.containers.count)",
        ]
        if !consignment.cancelledBy.isEmpty { lines.append("  cancelled by: \(consignment.cancelledBy)") }
        lines += consignment.containers.map { "    - customer \($0.customerID) from \($0.origin)" }
        return lines.joined(separator: "\n")
    }

    static func json(_ consignment: Consignment_Consignment) -> String {
        encode(dictionary(consignment))
    }

    /// The status as a word: booked, cancelling, cancelled.
    static func status(_ consignment: Consignment_Consignment) -> String {
        switch consignment.status {
        case .cancelling: "cancelling"
        case .cancelled: "cancelled"
        default: "booked"
        }
    }

    static func json(created: Consignment_Consignment, listed: [Consignment_Consignment]) -> String {
        encode(["created": dictionary(created), "consignments": listed.map(dictionary)])
    }

    private static func encode(_ object: [String: Any]) -> String {
        let data =
            (try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    private static func dictionary(_ consignment: Consignment_Consignment) -> [String: Any] {
        [
            "id": consignment.id, "description": consignment.description_p, "weight": Int(consignment.weight),
            "vessel_id": consignment.vesselID, "user_id": consignment.userID, "status": status(consignment),
            "cancelled_by": consignment.cancelledBy,
            "containers": consignment.containers.map {
                ["id": $0.id, "customer_id": $0.customerID, "origin": $0.origin, "user_id": $0.userID]
            },
        ]
    }
}
