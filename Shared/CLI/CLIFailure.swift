import ArgumentParser
import Foundation
import GRPCCore
import ShippyConfiguration
import ShippyDiscovery
import ShippyDomain

/// A command-line tool's failure: one line on stderr and a documented exit status (sysexits.h values).
///
/// | status | meaning |
/// |---|---|
/// | 64 | bad usage (unknown flag, missing argument) |
/// | 65 | invalid input: the service or the tool refused a value |
/// | 66 | an input file is missing or unreadable |
/// | 69 | the service is down or did not answer in time |
/// | 70 | an internal error in the service |
/// | 73 | it already exists (e.g. the email is taken) |
/// | 77 | not authenticated: wrong email or password, or a missing, bad or expired token |
public struct CLIFailure: Error, CustomStringConvertible {
    public static let invalidInput: Int32 = 65
    public static let noInput: Int32 = 66
    public static let unavailable: Int32 = 69
    public static let software: Int32 = 70
    public static let alreadyExists: Int32 = 73
    public static let notAuthenticated: Int32 = 77

    public var status: Int32
    public var message: String

    public init(status: Int32, _ message: String) {
        self.status = status
        self.message = message
    }

    public var description: String { message }

    /// What a failed call means to the person at the terminal; `service` names the peer: "user-service at …".
    public init(_ error: RPCError, service: String) {
        switch error.code {
        case .invalidArgument, .failedPrecondition, .outOfRange:
            self.init(status: Self.invalidInput, error.message)
        // A service that answers for a dependency names it in the status's metadata (its message says where
        // it is): pass that on as it is; otherwise the service itself could not be reached.
        case .unavailable where Self.namesDependency(error), .deadlineExceeded where Self.namesDependency(error):
            self.init(status: Self.unavailable, error.message)
        case .unavailable:
            self.init(status: Self.unavailable, "\(service) is unavailable (\(error.message)); \(Self.hint(error))")
        case .deadlineExceeded:
            self.init(status: Self.unavailable, "\(service) did not answer in time (\(error.message))")
        case .alreadyExists:
            self.init(status: Self.alreadyExists, error.message)
        case .unauthenticated, .permissionDenied:
            self.init(status: Self.notAuthenticated, error.message)
        case .notFound, .resourceExhausted:
            self.init(status: Self.invalidInput, error.message)
        default:
            self.init(status: Self.software, "\(service) failed: \(error.code): \(error.message)")
        }
    }

    /// What to check when a service cannot be reached: a server that hangs up before HTTP/2 begins, or a failed
    /// handshake, takes mutual TLS that this call did not offer or the two do not trust each other's authority.
    private static func hint(_ error: RPCError) -> String {
        let message = error.message.lowercased()
        if message.contains("preface") || message.contains("handshake") || message.contains("certificate") {
            return "is it running, and does it take TLS? Set \(TLSFiles.environmentNames) to a certificate from its "
                + "authority"
        }
        return "is it running?"
    }

    /// Whether the service said the failure is one of its dependencies'.
    private static func namesDependency(_ error: RPCError) -> Bool {
        error.metadata[stringValues: ShippyError.dependencyMetadataKey].contains { _ in true }
    }

    /// Prints the message on stderr, prefixed with the tool's name, and exits with the status.
    public func exit(tool: String) -> Never {
        FileHandle.standardError.write(Data("\(tool): \(message)\n".utf8))
        Foundation.exit(status)
    }
}

/// Runs a CLI's work, turning every failure into one line on stderr and its exit status.
public func runCLI(tool: String, service: String, _ body: () async throws -> Void) async {
    do {
        try await body()
    } catch let failure as CLIFailure {
        failure.exit(tool: tool)
    } catch let error as RPCError {
        CLIFailure(error, service: service).exit(tool: tool)
    } catch let error as ConfigurationError {
        CLIFailure(status: CLIFailure.invalidInput, error.description).exit(tool: tool)
    } catch {
        CLIFailure(status: CLIFailure.software, "\(error)").exit(tool: tool)
    }
}

/// Runs a CLI's work against the service whose address is the option, else the setting's environment
/// variable, else its default; failures become one line and an exit status, naming the service and address.
public func runCLI(
    tool: String, service: String, address setting: Setting<String>, option: String?,
    _ body: (_ address: String) async throws -> Void
) async {
    let address: String
    do {
        address = try CLISettings.value(setting, option: option)
    } catch {
        CLIFailure(status: CLIFailure.invalidInput, "\(error)").exit(tool: tool)
    }
    await runCLI(tool: tool, service: "\(service) at \(address)") { try await body(address) }
}

/// Where a CLI's token comes from: the argument, else a file (`-` for stdin), else `SHIPPY_TOKEN`, else (for
/// `current`) the login `user-cli login` saved.
public enum TokenInput {
    /// The token given, or the saved login's, refreshed when it is about to expire.
    /// - Throws: `CLIFailure` (64) when there is no token anywhere, (66) when the file cannot be read, (77) when the
    ///   saved login has ended.
    public static func current(argument: String?, file: String?, timeout: Duration) async throws -> String {
        if argument == nil, file == nil, try CLISettings.value(CLISettings.token) == nil,
            let saved = SavedSession.load()
        {
            return try await saved.freshToken(timeout: timeout)
        }
        return try resolve(argument: argument, file: file)
    }

    /// - Throws: `CLIFailure` (64) when there is no token anywhere, (66) when the file cannot be read.
    public static func resolve(argument: String?, file: String?) throws -> String {
        var token = argument
        if token == nil, let file {
            let data =
                file == "-"
                ? FileHandle.standardInput.readDataToEndOfFile() : FileManager.default.contents(atPath: file)
            guard let data else { throw CLIFailure(status: CLIFailure.noInput, "\(file): cannot read the token file") }
            token = String(decoding: data, as: UTF8.self)
        }
        token = try token ?? CLISettings.value(CLISettings.token)
        guard let token = token?.trimmingCharacters(in: .whitespacesAndNewlines), !token.isEmpty else {
            throw CLIFailure(
                status: 64,
                "no token: pass it as an argument, with --token-file, or in SHIPPY_TOKEN, or log in with `user-cli login`"
            )
        }
        return token
    }
}

/// Collects every page of a list: `fetch` gets one page for a token and answers its items and the next token.
public func allPages<Item>(_ fetch: (String) async throws -> (items: [Item], next: String)) async throws -> [Item] {
    var items: [Item] = []
    var token = ""
    repeat {
        let page = try await fetch(token)
        items += page.items
        token = page.next
    } while !token.isEmpty
    return items
}
