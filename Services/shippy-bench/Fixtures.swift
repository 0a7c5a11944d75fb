import GRPCCore
import ShippyContracts

/// The users and the vessel a run works with, all named with the run's prefix so that they are its own and can
/// be told apart (and removed) afterwards.
struct Fixtures: Sendable {
    /// Signed up and logged in; never ships, so its list of consignments stays empty.
    var reader: Account
    /// Ships in `create-consignment`.
    var shipper: Account
    /// The run's own vessel, registered with the admin's token it was given; otherwise bookings use the fleet's
    /// room, which a long run can fill.
    var ownVessel: String?

    /// The reader's token with its signature's first characters changed: well-formed, but not genuine.
    var forgedToken: String {
        let parts = reader.token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { return "forged" }
        let signature = parts[2]
        let replaced = String(signature.prefix(4).map { $0 == "A" ? "B" : "A" }) + signature.dropFirst(4)
        return "\(parts[0]).\(parts[1]).\(replaced)"
    }

    struct Account: Sendable {
        var email: String
        var password: String
        var token: String

        var metadata: Metadata { ["authorization": "Bearer \(token)"] }
    }

    static func email(_ prefix: String, _ name: String) -> String { "\(prefix)\(name)@bench.example.com" }

    static func prepare(
        prefix: String, users: Client, vessels: Client, adminToken: String?, options: CallOptions
    ) async throws -> Fixtures {
        let reader = try await signUp(email(prefix, "reader"), users: users, options: options)
        let shipper = try await signUp(email(prefix, "shipper"), users: users, options: options)
        var ownVessel: String?
        if let adminToken {
            do {
                let created = try await Vessel_VesselService.Client(wrapping: vessels).create(
                    .with {
                        $0.name = "\(prefix)freighter"
                        $0.capacity = Int32.max
                        $0.maxWeight = Int32.max
                    }, metadata: ["authorization": "Bearer \(adminToken)"], options: options)
                ownVessel = created.vessel.id
            } catch let error as RPCError where [.unauthenticated, .permissionDenied].contains(error.code) {
                throw AdminTokenRefused(reason: error.message)
            }
        }
        return Fixtures(reader: reader, shipper: shipper, ownVessel: ownVessel)
    }

    /// vessel-service refused the admin's token the run was given (expired, not an admin's, not genuine).
    struct AdminTokenRefused: Error {
        var reason: String
    }

    /// Signs up and logs in, waiting out a busy user-service (`unavailable`) as a patient client would.
    static func signUp(_ email: String, users: Client, options: CallOptions) async throws -> Account {
        let password = "bench password \(UInt64.random(in: .min ... .max))"
        let service = User_UserService.Client(wrapping: users)
        _ = try await retryingBusy {
            try await service.create(
                .with {
                    $0.name = "Bench"
                    $0.company = "shippy-bench"
                    $0.email = email
                    $0.password = password
                }, options: options)
        }
        let token = try await logIn(email, password, users: users, options: options)
        return Account(email: email, password: password, token: token)
    }

    static func logIn(_ email: String, _ password: String, users: Client, options: CallOptions) async throws -> String {
        try await retryingBusy {
            try await User_UserService.Client(wrapping: users).auth(
                .with {
                    $0.email = email
                    $0.password = password
                }, options: options
            ).token
        }
    }
}

/// Repeats `call` while the service answers `unavailable` (busy hashing: nothing was done), with a growing
/// pause, at most ten times.
func retryingBusy<Result>(_ call: () async throws -> Result) async throws -> Result {
    var pause = Duration.milliseconds(20)
    for _ in 1..<10 {
        do {
            return try await call()
        } catch let error as RPCError where error.code == .unavailable {
            try await Task.sleep(for: pause)
            pause = min(pause * 2, .seconds(1))
        }
    }
    return try await call()
}
