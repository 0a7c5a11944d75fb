import ArgumentParser
import Foundation
import Logging
import PostgresNIO
import ShippyConfiguration
import ShippyDomain
import ShippyPostgres
import ShippyStorage

/// `user-service grant-admin EMAIL` and `revoke-admin EMAIL`: the operator's way to the first admin. They run where
/// user-service's database is reachable, with its settings (`POSTGRES_URL`, the configuration file), so only
/// whoever operates the server can run them; admins use `user-cli grant-admin` after that.
struct GrantAdmin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grant-admin",
        abstract: "Grant the admin role to the user with EMAIL (an operator's command; audited).",
        discussion: RoleCommand.discussion)

    @Argument(help: "The email of a user who has signed up.") var email: String

    func run() async throws { try await RoleCommand.change(email: email, granted: true) }
}

struct RevokeAdmin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke-admin",
        abstract: "Revoke the admin role of the user with EMAIL (an operator's command; audited).",
        discussion: RoleCommand.discussion)

    @Argument(help: "The email of the user.") var email: String

    func run() async throws { try await RoleCommand.change(email: email, granted: false) }
}

enum RoleCommand {
    static let discussion = """
        Reads user-service's settings (POSTGRES_URL, CONFIG_FILE) and changes the role in its database; the \
        change is recorded in the table role_changes with the actor "operator" and takes effect at the user's \
        next log-in or refresh. Exit status: 0 done, 1 bad configuration or database unreachable, 66 no such user.
        """

    static func change(email: String, granted: Bool) async throws {
        let logger = Logger(label: UserServiceCommand.name)
        let settings = try await Settings.load()
        let url = try settings.value(UserServiceConfiguration.postgresURL)
        let configuration: PostgresClient.Configuration
        do {
            configuration = try PostgresURL.configuration(url)
        } catch {
            throw UserServiceConfiguration.postgresURL.error(error.message)
        }
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        let repository = PostgresUserRepository(client: client, logger: logger)
        let change = RoleChange(role: .admin, granted: granted, email: email, actor: "operator")
        let changed = try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            try await repository.migrate()
            return try await repository.change(change)
        }
        guard let changed else {
            FileHandle.standardError.write(Data("user-service: no user with email \(email); sign up first\n".utf8))
            throw ExitCode(66)
        }
        UserServiceHandler.audit(change, of: changed, logger: logger)
        print(
            "\(changed.email) (\(changed.id)) \(granted ? "is now an admin" : "is no longer an admin"): "
                + "from their next log-in")
    }
}
