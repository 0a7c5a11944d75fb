import ArgumentParser
import Foundation
import GRPCCore
import ShippyCLI
import ShippyConfiguration
import ShippyContracts
import ShippyDiscovery

/// The entry of `vessel-cli`, for its executable and for `shippy`: nil runs it with the process's arguments.
public func vesselCLIMain(_ arguments: [String]? = nil) async { await VesselCLI.main(arguments) }

/// `vessel-cli`: list the fleet with the room each vessel has left, or (an admin) add a vessel.
struct VesselCLI: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vessel-cli",
        abstract: "List the fleet with the room left, or add a vessel (admins).",
        discussion: """
            Examples:
              vessel-cli list "$TOKEN"
              vessel-cli create --name "Northern Star" --capacity 40 --max-weight 300000 "$ADMIN_TOKEN"

            The token comes from the TOKEN argument, else --token-file (- for stdin), else SHIPPY_TOKEN, else the
            login `user-cli login` kept (refreshed when it is about to expire; user-cli logout ends it).
            Adding a vessel needs an admin's token (user-service grant-admin EMAIL makes the first admin).
            Exit status: 0 ok, 64 bad usage or no token, 65 invalid input, 66 token file missing,
            69 vessel-service down or too slow, 70 service error, 73 the vessel id is taken,
            77 token missing, malformed or expired, or not allowed (not an admin).
            """,
        subcommands: [List.self, Create.self],
        defaultSubcommand: List.self
    )
}

/// Where vessel-service is, how long to wait, and whose token to send.
struct VesselConnection: ParsableArguments {
    @Argument(help: "The token from `user-cli login` (or --token-file, SHIPPY_TOKEN, or the kept login).")
    var token: String?

    @Option(help: "Read the token from this file (- for stdin).")
    var tokenFile: String?

    @Option(help: CLISettings.help(SharedSettings.vesselServiceAddress))
    var address: String?

    @Option(help: "Seconds to wait for each answer.")
    var timeout: Double = 10

    /// Runs `body` with a client and the caller's token; failures become one line and an exit status.
    func withVesselService(
        _ body: (Vessel_VesselService.Client<ServiceTransport>, Metadata, CallOptions) async throws -> Void
    ) async {
        await runCLI(
            tool: "vessel-cli", service: "vessel-service", address: SharedSettings.vesselServiceAddress, option: address
        ) {
            address in
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
                    Vessel_VesselService.Client(wrapping: client), ["authorization": "Bearer \(token)"], options)
            }
        }
    }
}

/// `vessel-cli [list]`: every vessel, a line each, with its room left.
struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the fleet with the room left (the default).")

    @OptionGroup var connection: VesselConnection

    @Flag(help: "Print machine-readable JSON instead of text.")
    var json = false

    func run() async throws {
        await connection.withVesselService { vessels, metadata, options in
            let fleet = try await allPages { token in
                let page = try await vessels.list(.with { $0.pageToken = token }, metadata: metadata, options: options)
                return (page.vessels, page.nextPageToken)
            }
            print(json ? FleetReport.json(fleet) : FleetReport.text(fleet))
        }
    }
}

/// `vessel-cli create`: registers a vessel (admins only).
struct Create: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Add a vessel to the fleet (needs an admin's token).")

    @Option(help: "The vessel's name.") var name: String
    @Option(help: "How many containers it carries.") var capacity: Int32
    @Option(help: "The most it carries, in kg.") var maxWeight: Int32
    @Option(help: "Its id (default: one is assigned).") var id: String = ""
    @OptionGroup var connection: VesselConnection

    func run() async throws {
        await connection.withVesselService { vessels, metadata, options in
            let created = try await vessels.create(
                .with {
                    $0.id = id
                    $0.name = name
                    $0.capacity = capacity
                    $0.maxWeight = maxWeight
                }, metadata: metadata, options: options
            ).vessel
            print(
                "Created vessel \(created.id): \(created.name), \(created.capacity) containers, \(created.maxWeight) kg"
            )
        }
    }
}

/// How the fleet is printed.
enum FleetReport {
    static func text(_ fleet: [Vessel_Vessel]) -> String {
        var lines = ["Fleet (\(fleet.count) vessels): id, name, containers left of capacity, kg left of max weight"]
        lines += fleet.map { vessel in
            "  \(vessel.id)  \(vessel.name)  \(vessel.roomCapacity)/\(vessel.capacity) containers"
                + "  \(vessel.roomWeight)/\(vessel.maxWeight) kg\(vessel.available ? "" : "  (not available)")"
        }
        return lines.joined(separator: "\n")
    }

    static func json(_ fleet: [Vessel_Vessel]) -> String {
        let objects: [[String: Any]] = fleet.map { vessel in
            [
                "id": vessel.id, "name": vessel.name, "capacity": Int(vessel.capacity),
                "max_weight": Int(vessel.maxWeight),
                "room_capacity": Int(vessel.roomCapacity), "room_weight": Int(vessel.roomWeight),
                "available": vessel.available, "owner_id": vessel.ownerID,
            ]
        }
        let data =
            (try? JSONSerialization.data(withJSONObject: ["vessels": objects], options: [.prettyPrinted, .sortedKeys]))
            ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}
