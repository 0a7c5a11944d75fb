import APIGateway
import ConsignmentCLI
import ConsignmentService
import EmailService
import ShippyBench
import UserCLI
import UserService
import VesselCLI
import VesselService

// `shippy`: every server and CLI of Shippy in one executable, chosen by the name it runs under (the image links
// each command's name to it) or by its first argument (`shippy vessel-service --help`). One binary instead of
// nine static ones makes the image a fraction of the size, and the services on one host share its pages.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

let commands: [String: ([String]?) async -> Void] = [
    "vessel-service": vesselServiceMain, "user-service": userServiceMain,
    "consignment-service": consignmentServiceMain, "email-service": emailServiceMain, "api-gateway": apiGatewayMain,
    "user-cli": userCLIMain, "consignment-cli": consignmentCLIMain, "vessel-cli": vesselCLIMain,
    "shippy-bench": shippyBenchMain,
]
let arguments = CommandLine.arguments
let runAs = arguments.first?.split(separator: "/").last.map(String.init) ?? ""
if let command = commands[runAs] {
    await command(nil)
} else if arguments.count > 1, let command = commands[arguments[1]] {
    await command(Array(arguments.dropFirst(2)))
} else {
    let usage = """
        usage: shippy COMMAND [ARGUMENTS…], or run it under a COMMAND's name (a link to it)
        commands: \(commands.keys.sorted().joined(separator: ", "))
        `shippy COMMAND --help` describes each.

        """
    if arguments.count == 2 && ["-h", "--help", "help"].contains(arguments[1]) {
        print(usage, terminator: "")
        exit(0)
    }
    var complaint = "shippy: \(arguments.count > 1 ? "no command \(arguments[1])" : "no command given")\n\(usage)"
    complaint.withUTF8 { _ = write(STDERR_FILENO, $0.baseAddress, $0.count) }
    exit(64)
}
