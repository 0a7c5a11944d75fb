import ArgumentParser
import Foundation
import GRPCCore
import ShippyCLI
import ShippyConfiguration
import ShippyContracts
import ShippyDiscovery

/// The entry of `user-cli`, for its executable and for `shippy`: nil runs it with the process's arguments.
public func userCLIMain(_ arguments: [String]? = nil) async { await UserCLI.main(arguments) }

/// `user-cli`: create a user and log in, as the original shippy CLI did, or only log in.
struct UserCLI: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user-cli",
        abstract: "Create a Shippy user and log in, or only log in.",
        discussion: """
            Examples:
              user-cli --name "Ewan Valentine" --email ewan@example.com --company BBC --password 'correct horse'
              TOKEN=$(user-cli login --email ewan@example.com)     # asks for the password; keeps the login
              consignment-cli consignment.json                       # no token: the kept login, refreshed
              user-cli grant-admin ann@example.com                   # as an admin
              user-cli logout                                        # revokes the kept login

            A login is kept in SHIPPY_SESSION_FILE (default ~/.config/shippy/session.json, owner-only) unless
            --no-save; the other CLIs use it when given no token, refreshing its token when it is about to expire.

            The password comes from --password, else SHIPPY_PASSWORD, else a prompt (or one line of stdin).
            Exit status: 0 ok, 64 bad usage, 65 invalid input or no such user, 69 user-service down or too slow,
            70 service error, 77 wrong email or password (also after signing up with an address that has an
            account: its owner is mailed instead), or a token that is not an admin's.
            """,
        subcommands: [Create.self, Login.self, Logout.self, GrantAdmin.self, RevokeAdmin.self, RevokeSessions.self],
        defaultSubcommand: Create.self
    )
}

/// Where the user service is and how long to wait for it.
struct ConnectionOptions: ParsableArguments {
    @Option(help: CLISettings.help(SharedSettings.userServiceAddress))
    var address: String?

    @Option(help: "Seconds to wait for each answer.")
    var timeout: Double = 10

    /// Runs `body` with a client of the user service and its address; failures become one line and an exit status.
    func withUserService(
        _ body: (User_UserService.Client<ServiceTransport>, CallOptions, String) async throws -> Void
    ) async {
        await runCLI(
            tool: "user-cli", service: "user-service", address: SharedSettings.userServiceAddress, option: address
        ) {
            address in
            let target = try ServiceAddress.target(address, key: "--address")
            var options = CallOptions.defaults
            options.timeout = .milliseconds(Int64(timeout * 1000))
            let transport = try ServiceTransport(
                main: target, serviceConfig: Self.retryBusyLogins, security: try CLISettings.security())
            try await withGRPCClient(transport: transport) { client in
                try await body(User_UserService.Client(wrapping: client), options, address)
            }
        }
    }
}

extension ConnectionOptions {
    /// A login refused because user-service is busy hashing (`unavailable`) is retried with backoff: logging
    /// in changes nothing, so it is safe to repeat. Sign-up is not retried (it is not idempotent).
    static let retryBusyLogins = RetryPolicies.serviceConfig([
        MethodConfig(
            names: [MethodConfig.Name(service: "user.UserService", method: "Auth")],
            executionPolicy: .retry(
                RetryPolicy(
                    maxAttempts: 5, initialBackoff: .milliseconds(200), maxBackoff: .seconds(2),
                    backoffMultiplier: 2, retryableStatusCodes: [.unavailable]))
        )
    ])
}

/// The password, from the flag, the environment, a prompt, or a line of standard input.
func readPassword(_ flag: String?) throws -> String {
    if let flag { return flag }
    if let password = try CLISettings.value(CLISettings.password) { return password }
    if isatty(STDIN_FILENO) != 0, let typed = getpass("Password: ") { return String(cString: typed) }
    guard let line = readLine(strippingNewline: true) else {
        throw CLIFailure(
            status: CLIFailure.invalidInput, "no password: pass --password, set SHIPPY_PASSWORD, or type it")
    }
    return line
}

/// `user-cli [create]`: creates the user, prints it, logs in and prints the token.
struct Create: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create a user, then log in and print the token (the default).")

    @Option(help: "Full name.") var name: String
    @Option(help: "Email address; also the login.") var email: String
    @Option(help: "Company name.") var company: String = ""
    @Option(help: "Password, 8 to 1024 characters (or SHIPPY_PASSWORD, or a prompt).") var password: String?
    @OptionGroup var saving: SaveOption
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        await connection.withUserService { users, options, address in
            let password = try readPassword(password)
            let created = try await users.create(
                .with {
                    $0.name = name; $0.email = email; $0.company = company; $0.password = password
                },
                options: options
            ).user
            print(
                "Created user \(created.id): \(created.name) <\(created.email)>\(created.company.isEmpty ? "" : ", \(created.company)")"
            )
            let token = try await users.auth(
                .with {
                    $0.email = email; $0.password = password
                }, options: options)
            saving.save(token, userService: address)
            print("Token: \(token.token)")
        }
    }
}

/// Whether a log-in is kept for the other CLIs.
struct SaveOption: ParsableArguments {
    @Flag(help: "Do not keep the login for the other CLIs (by default it is kept in SHIPPY_SESSION_FILE).")
    var noSave = false

    /// A login that cannot be kept (a read-only home in a container) is still a login: a note, not a failure.
    func save(_ token: User_Token, userService: String) {
        guard !noSave else { return }
        do {
            try SavedSession(token, userService: userService).save()
        } catch {
            FileHandle.standardError.write(Data("user-cli: note: the login is not kept: \(error)\n".utf8))
        }
    }
}

/// `user-cli login`: prints only the token, so that `TOKEN=$(user-cli login …)` works.
struct Login: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Log in, print only the token, and keep the login for the other CLIs (they refresh it).")

    @Option(help: "Email address.") var email: String
    @Option(help: "Password (or SHIPPY_PASSWORD, or a prompt).") var password: String?
    @OptionGroup var saving: SaveOption
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        await connection.withUserService { users, options, address in
            let password = try readPassword(password)
            let token = try await users.auth(
                .with {
                    $0.email = email; $0.password = password
                }, options: options)
            saving.save(token, userService: address)
            print(token.token)
        }
    }
}

/// `user-cli logout`: revokes the saved login at user-service and forgets it.
struct Logout: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "End the saved login: user-service revokes it, and it is forgotten here.")

    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        guard let saved = SavedSession.load() else {
            print("No saved login (\(SavedSession.path)).")
            return
        }
        await connection.withUserService { users, options, _ in
            _ = try await users.logout(.with { $0.refreshToken = saved.refreshToken }, options: options)
            SavedSession.remove()
            print("Logged out.")
        }
    }
}

/// `user-cli revoke-sessions EMAIL [TOKEN]`: ends every login of a user (yours, or anyone's for an admin).
struct RevokeSessions: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "End every login of the user with EMAIL: yours, or anyone's with an admin's token.")

    @Argument(help: "The user's email.") var email: String
    @Argument(help: "Your token (or --token-file, SHIPPY_TOKEN, or the saved login).") var token: String?
    @Option(help: "Read the token from this file (- for stdin).") var tokenFile: String?
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        await connection.withUserService { users, options, _ in
            let token = try await TokenInput.current(argument: token, file: tokenFile, timeout: options.timeout!)
            let user = try await users.revokeSessions(
                .with { $0.email = email }, metadata: ["authorization": "Bearer \(token)"], options: options
            ).user
            print("Every login of \(user.email) is revoked; tokens already issued end within the token lifetime.")
        }
    }
}

/// `user-cli grant-admin EMAIL TOKEN`: an admin grants the admin role (the first admin is the operator's:
/// `user-service grant-admin EMAIL`).
struct GrantAdmin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Grant the admin role to the user with EMAIL (needs an admin's token; from their next log-in).")

    @OptionGroup var change: RoleChangeOptions

    func run() async throws { await change.set(granted: true) }
}

/// `user-cli revoke-admin EMAIL TOKEN`.
struct RevokeAdmin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Revoke the admin role of the user with EMAIL (needs another admin's token).")

    @OptionGroup var change: RoleChangeOptions

    func run() async throws { await change.set(granted: false) }
}

struct RoleChangeOptions: ParsableArguments {
    @Argument(help: "The user's email.") var email: String
    @Argument(help: "An admin's token (or --token-file, SHIPPY_TOKEN, or the saved login).") var token: String?
    @Option(help: "Read the token from this file (- for stdin).") var tokenFile: String?
    @OptionGroup var connection: ConnectionOptions

    func set(granted: Bool) async {
        await connection.withUserService { users, options, _ in
            let token = try await TokenInput.current(argument: token, file: tokenFile, timeout: options.timeout!)
            let user = try await users.setRole(
                .with {
                    $0.email = email; $0.role = "admin"; $0.granted = granted
                }, metadata: ["authorization": "Bearer \(token)"], options: options
            ).user
            print("\(user.email) (\(user.id)): roles \(user.roles.joined(separator: ", ")), from their next log-in")
        }
    }
}
