import Foundation
import GRPCCore
import ShippyConfiguration
import ShippyContracts
import ShippyDiscovery

/// The login that `user-cli login` keeps for the other CLIs, so that they need no token argument and never meet
/// an expired one: access tokens live minutes, and a CLI given none refreshes the saved login when its token is
/// about to expire (the refresh token rotates, and the new pair is saved). `user-cli logout` revokes it.
///
/// Kept in `SHIPPY_SESSION_FILE`, else `~/.config/shippy/session.json`, readable by its owner only.
public struct SavedSession: Codable, Sendable, Equatable {
    public var token: String
    public var expiresAt: Int64
    public var refreshToken: String
    public var refreshExpiresAt: Int64
    /// The user-service address it came from: refreshed there.
    public var userService: String

    public init(_ token: User_Token, userService: String) {
        self.token = token.token
        self.expiresAt = token.expiresAtUnix
        self.refreshToken = token.refreshToken
        self.refreshExpiresAt = token.refreshExpiresAtUnix
        self.userService = userService
    }

    public static var path: String {
        let environment = ProcessInfo.processInfo.environment
        if let path = environment["SHIPPY_SESSION_FILE"], !path.isEmpty { return path }
        return "\(environment["HOME"] ?? NSHomeDirectory())/.config/shippy/session.json"
    }

    /// The saved login, or `nil` when there is none (or it cannot be read).
    public static func load() -> SavedSession? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try? JSONDecoder().decode(SavedSession.self, from: data)
    }

    /// Saves it, readable by its owner only (the folder too), replacing the file in one rename.
    /// - Throws: `CLIFailure` (73, can't create) naming the file.
    public func save() throws {
        let folder = (Self.path as NSString).deletingLastPathComponent
        let temporary = "\(Self.path).\(getpid()).tmp"
        do {
            try FileManager.default.createDirectory(
                atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            guard
                FileManager.default.createFile(
                    atPath: temporary, contents: try JSONEncoder().encode(self), attributes: [.posixPermissions: 0o600])
            else { throw CocoaError(.fileWriteUnknown) }
            guard rename(temporary, Self.path) == 0 else { throw CocoaError(.fileWriteUnknown) }
        } catch {
            unlink(temporary)
            throw CLIFailure(status: 73, "cannot save the login in \(Self.path) (set SHIPPY_SESSION_FILE elsewhere)")
        }
    }

    public static func remove() { unlink(path) }

    /// A token valid for at least another minute: the saved one, or the next one from user-service (then saved).
    /// - Throws: `CLIFailure` 77 when the login has ended (expired, revoked, or logged out elsewhere), or what the
    ///   call to user-service throws.
    public func freshToken(timeout: Duration) async throws -> String {
        if expiresAt > Int64(Date().timeIntervalSince1970) + 60 { return token }
        let target = try ServiceAddress.target(userService, key: "the saved login's user-service")
        let next = try await withGRPCClient(
            transport: try ServiceTransport(main: target, security: try CLISettings.security())
        ) {
            client in
            var options = CallOptions.defaults
            options.timeout = timeout
            do {
                return try await User_UserService.Client(wrapping: client).refresh(
                    .with { $0.refreshToken = refreshToken }, options: options)
            } catch let error as RPCError where error.code == .unauthenticated {
                SavedSession.remove()
                throw CLIFailure(
                    status: CLIFailure.notAuthenticated,
                    "the saved login has ended (\(error.message)); log in again with user-cli login")
            }
        }
        try SavedSession(next, userService: userService).save()
        return next.token
    }
}
