import ArgumentParser
import Foundation
import GRPCCore
import ShippyCLI
import ShippyConfiguration
import ShippyContracts
import ShippyDiscovery

/// The entry of `consignment-cli`, for its executable and for `shippy`: nil runs it with the process's arguments.
public func consignmentCLIMain(_ arguments: [String]? = nil) async { await ConsignmentCLI.main(arguments) }

/// `consignment-cli [FILE] [TOKEN]`: create a consignment from a JSON file, then list the caller's consignments.
struct ConsignmentCLI: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consignment-cli",
        abstract: "Ship a consignment: book it on a vessel, then list your consignments.",
        discussion: """
            Examples:
              consignment-cli consignment.json "$TOKEN"
              SHIPPY_TOKEN=$(user-cli login --email ewan@example.com) consignment-cli
              user-cli login --email ewan@example.com | consignment-cli --token-file - consignment.json

            The token comes from the TOKEN argument, else --token-file (- for stdin), else SHIPPY_TOKEN, else the
            login `user-cli login` kept (refreshed when it is about to expire; user-cli logout ends it).
            Exit status: 0 ok, 64 bad usage or no token, 65 invalid file or input, 66 file missing,
            69 a service is down or too slow, 70 service error, 77 token missing, malformed or expired.
            """
    )

    @Argument(help: "The consignment JSON file (- for stdin).")
    var file: String = "consignment.json"

    @Argument(help: "The token from `user-cli login` (or --token-file, SHIPPY_TOKEN, or the kept login).")
    var token: String?

    @Option(help: "Read the token from this file (- for stdin).")
    var tokenFile: String?

    @Flag(help: "Print machine-readable JSON instead of text.")
    var json = false

    @Option(help: "Idempotency key: running again with the same key books once (default: a new key for each run).")
    var idempotencyKey: String?

    @Option(help: CLISettings.help(SharedSettings.consignmentServiceAddress))
    var address: String?

    @Option(help: "Seconds to wait for each answer.")
    var timeout: Double = 10

    func run() async throws {
        await runCLI(
            tool: "consignment-cli", service: "consignment-service", address: SharedSettings.consignmentServiceAddress,
            option: address
        ) { address in
            let token = try await TokenInput.current(
                argument: token, file: tokenFile, timeout: .milliseconds(Int64(timeout * 1000)))
            let request = try ConsignmentFile.load(file).request
            let target = try ServiceAddress.target(address, key: "--address")
            var options = CallOptions.defaults
            options.timeout = .milliseconds(Int64(timeout * 1000))
            let metadata: Metadata = ["authorization": "Bearer \(token)"]
            var create = metadata
            // Run again with the same --idempotency-key after a failure, and the consignment is booked once.
            create.addString(idempotencyKey ?? UUID().uuidString.lowercased(), forKey: "idempotency-key")
            try await withGRPCClient(
                transport: ServiceTransport(
                    main: target, serviceConfig: RetryPolicies.serviceConfig(), security: try CLISettings.security())
            ) {
                client in
                let shipping = Consignment_ShippingService.Client(wrapping: client)
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
            "  \($0.id)  vessel \($0.vesselID)  \($0.weight) kg  \($0.containers.count) containers  \($0.description_p)"
        }
        return lines.joined(separator: "\n")
    }

    static func json(created: Consignment_Consignment, listed: [Consignment_Consignment]) -> String {
        let object: [String: Any] = ["created": dictionary(created), "consignments": listed.map(dictionary)]
        let data =
            (try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    private static func dictionary(_ consignment: Consignment_Consignment) -> [String: Any] {
        [
            "id": consignment.id, "description": consignment.description_p, "weight": Int(consignment.weight),
            "vessel_id": consignment.vesselID, "user_id": consignment.userID,
            "containers": consignment.containers.map {
                ["id": $0.id, "customer_id": $0.customerID, "origin": $0.origin, "user_id": $0.userID]
            },
        ]
    }
}
