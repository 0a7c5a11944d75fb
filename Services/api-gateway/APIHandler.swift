import Foundation
import GRPCCore
import OpenAPIRuntime
import ShippyContracts
import ShippyDiscovery

/// The operations of openapi.yaml, each one gRPC call (two for `GET /v1/users/me`) with the caller's token and a
/// deadline. Failures are thrown: `EdgeMiddleware` turns them into problems with the status that fits.
struct APIHandler: APIProtocol {
    typealias Client = GRPCClient<ServiceTransport>
    let users: User_UserService.Client<ServiceTransport>
    let consignments: Consignment_ShippingService.Client<ServiceTransport>
    let vessels: Vessel_VesselService.Client<ServiceTransport>
    let health: [(name: String, client: Grpc_Health_V1_Health.Client<ServiceTransport>)]
    /// Deadline of each call to a service.
    let timeout: Duration
    /// The live streams of consignment events.
    let live: LiveConsignmentEvents

    init(users: Client, consignments: Client, vessels: Client, timeout: Duration, live: LiveConsignmentEvents) {
        self.users = .init(wrapping: users)
        self.consignments = .init(wrapping: consignments)
        self.vessels = .init(wrapping: vessels)
        health = [
            ("user-service", .init(wrapping: users)), ("consignment-service", .init(wrapping: consignments)),
            ("vessel-service", .init(wrapping: vessels)),
        ]
        self.timeout = timeout
        self.live = live
    }

    private var options: CallOptions {
        var options = CallOptions.defaults
        options.timeout = timeout
        return options
    }

    /// The caller's token as the services take it; a 401 when the request carried none.
    private func authorized(_ extra: Metadata = [:]) throws -> Metadata {
        guard let token = BearerToken.current else {
            throw Problem(
                .unauthorized, "this needs a token: send \"Authorization: Bearer <token>\" (POST /v1/sessions)")
        }
        var metadata: Metadata = ["authorization": "Bearer \(token)"]
        metadata.add(contentsOf: extra)
        return metadata
    }

    func signUp(_ input: Operations.SignUp.Input) async throws -> Operations.SignUp.Output {
        guard case .json(let signUp) = input.body else { throw Problem(.badRequest, "the body must be JSON") }
        let response = try await users.create(
            .with {
                $0.name = signUp.name; $0.email = signUp.email; $0.company = signUp.company ?? ""
                $0.password = signUp.password
            }, options: options)
        return .created(.init(body: .json(.init(response.user))))
    }

    func logIn(_ input: Operations.LogIn.Input) async throws -> Operations.LogIn.Output {
        guard case .json(let credentials) = input.body else { throw Problem(.badRequest, "the body must be JSON") }
        let token = try await users.auth(
            .with {
                $0.email = credentials.email; $0.password = credentials.password
            }, options: options)
        return .ok(.init(body: .json(.init(token))))
    }

    func refreshSession(_ input: Operations.RefreshSession.Input) async throws -> Operations.RefreshSession.Output {
        guard case .json(let body) = input.body else { throw Problem(.badRequest, "the body must be JSON") }
        let token = try await users.refresh(.with { $0.refreshToken = body.refreshToken }, options: options)
        return .ok(.init(body: .json(.init(token))))
    }

    func logOut(_ input: Operations.LogOut.Input) async throws -> Operations.LogOut.Output {
        guard case .json(let body) = input.body else { throw Problem(.badRequest, "the body must be JSON") }
        _ = try await users.logout(.with { $0.refreshToken = body.refreshToken }, options: options)
        return .noContent(.init())
    }

    func getMe(_ input: Operations.GetMe.Input) async throws -> Operations.GetMe.Output {
        // No id: user-service answers the user its verified token names.
        let response = try await users.get(User_User(), metadata: try authorized(), options: options)
        return .ok(.init(body: .json(.init(response.user))))
    }

    /// A page parameter the service refuses (a size past 500, a token it did not issue) is a malformed request.
    private func paging<T>(_ call: () async throws -> T) async throws -> T {
        do {
            return try await call()
        } catch let error as RPCError where error.code == .invalidArgument {
            throw Problem(error, invalid: .badRequest)
        }
    }

    func listConsignments(_ input: Operations.ListConsignments.Input) async throws -> Operations.ListConsignments.Output
    {
        let metadata = try authorized()
        let response = try await paging {
            try await consignments.getConsignments(
                .with {
                    $0.pageSize = input.query.pageSize ?? 0; $0.pageToken = input.query.pageToken ?? ""
                },
                metadata: metadata, options: options)
        }
        return .ok(
            .init(
                body: .json(
                    .init(
                        consignments: response.consignments.map(Components.Schemas.Consignment.init),
                        nextPageToken: response.nextPageToken.isEmpty ? nil : response.nextPageToken))))
    }

    func createConsignment(
        _ input: Operations.CreateConsignment.Input
    ) async throws -> Operations.CreateConsignment.Output {
        // Without the client's key, one of our own: the gRPC client may then retry the call on another replica
        // (RetryPolicies) and the consignment is still made once.
        // The header as sent is held to its rule by `IdempotencyKeyMiddleware`; decoded, it is the same.
        let key = input.headers.idempotencyKey ?? UUID().uuidString.lowercased()
        let metadata = try authorized(["idempotency-key": "\(key)"])
        guard case .json(let new) = input.body else { throw Problem(.badRequest, "the body must be JSON") }
        do {
            let response = try await consignments.createConsignment(
                .with {
                    $0.description_p = new.description
                    $0.weight = new.weight
                    $0.containers = new.containers.map { container in
                        .with {
                            $0.id = container.id ?? ""; $0.customerID = container.customerId
                            $0.origin = container.origin
                        }
                    }
                }, metadata: metadata, options: options)
            return .created(.init(body: .json(.init(response.consignment))))
        } catch let error as RPCError where error.code == .resourceExhausted {
            // No vessel has room for it: the request is fine, the fleet as it is now cannot take it.
            throw Problem(error, exhausted: .conflict)
        }
    }

    func getConsignment(_ input: Operations.GetConsignment.Input) async throws -> Operations.GetConsignment.Output {
        let response = try await consignments.getConsignment(
            .with { $0.id = input.path.id }, metadata: try authorized(), options: options)
        return .ok(.init(body: .json(.init(response.consignment))))
    }

    func streamConsignmentEvents(
        _ input: Operations.StreamConsignmentEvents.Input
    ) async throws -> Operations.StreamConsignmentEvents.Output {
        // user-service verifies the token and names its user; the stream ends when the token expires.
        let metadata = try authorized()
        let me = try await users.get(User_User(), metadata: metadata, options: options)
        let expiry = BearerToken.current.flatMap(TokenExpiry.of) ?? Date().addingTimeInterval(900)
        let events = try live.open(userID: me.user.id, until: expiry)
        return .ok(.init(body: .textEventStream(HTTPBody(events, length: .unknown))))
    }

    func cancelConsignment(
        _ input: Operations.CancelConsignment.Input
    ) async throws -> Operations.CancelConsignment.Output {
        let response = try await consignments.cancelConsignment(
            .with { $0.id = input.path.id }, metadata: try authorized(), options: options)
        return .ok(.init(body: .json(.init(response.consignment))))
    }

    func listVessels(_ input: Operations.ListVessels.Input) async throws -> Operations.ListVessels.Output {
        let metadata = try authorized()
        let response = try await paging {
            try await vessels.list(
                .with {
                    $0.pageSize = input.query.pageSize ?? 0; $0.pageToken = input.query.pageToken ?? ""
                },
                metadata: metadata, options: options)
        }
        return .ok(
            .init(
                body: .json(
                    .init(
                        vessels: response.vessels.map(Components.Schemas.Vessel.init),
                        nextPageToken: response.nextPageToken.isEmpty ? nil : response.nextPageToken))))
    }

    func createVessel(_ input: Operations.CreateVessel.Input) async throws -> Operations.CreateVessel.Output {
        let metadata = try authorized()
        guard case .json(let new) = input.body else { throw Problem(.badRequest, "the body must be JSON") }
        let response = try await vessels.create(
            .with {
                $0.id = new.id ?? ""; $0.name = new.name; $0.capacity = new.capacity; $0.maxWeight = new.maxWeight
                $0.available = true
            }, metadata: metadata, options: options)
        return .created(.init(body: .json(.init(response.vessel))))
    }

    func liveness(_ input: Operations.Liveness.Input) async throws -> Operations.Liveness.Output {
        .ok(.init(body: .json(.init(status: .ok))))
    }

    /// Every service's grpc.health.v1 status, asked at once.
    func readiness(_ input: Operations.Readiness.Input) async throws -> Operations.Readiness.Output {
        var options = CallOptions.defaults
        options.timeout = min(timeout, .seconds(2))
        let statuses = await withTaskGroup(of: (String, String).self) { group in
            for (name, client) in health {
                group.addTask { [options] in
                    do {
                        let response = try await client.check(.init(), options: options)
                        return (name, "\(response.status)".uppercased())
                    } catch {
                        return (name, "UNREACHABLE")
                    }
                }
            }
            return await group.reduce(into: [String: String]()) { $0[$1.0] = $1.1 }
        }
        let ready = statuses.values.allSatisfy { $0 == "SERVING" }
        let body = Components.Schemas.Readiness(
            status: ready ? .ready : .notReady, services: .init(additionalProperties: statuses))
        return ready ? .ok(.init(body: .json(body))) : .serviceUnavailable(.init(body: .json(body)))
    }
}

extension Components.Schemas.User {
    init(_ user: User_User) {
        self.init(id: user.id, name: user.name, email: user.email, company: user.company, roles: user.roles)
    }
}

extension Components.Schemas.Consignment {
    init(_ consignment: Consignment_Consignment) {
        self.init(
            id: consignment.id, description: consignment.description_p, weight: consignment.weight,
            containers: consignment.containers.map {
                .init(id: $0.id.isEmpty ? nil : $0.id, customerId: $0.customerID, origin: $0.origin)
            },
            vesselId: consignment.vesselID, status: StatusPayload(consignment.status),
            cancelledBy: consignment.cancelledBy.isEmpty ? nil : consignment.cancelledBy)
    }
}

extension Components.Schemas.Consignment.StatusPayload {
    init(_ status: Consignment_Consignment.Status) {
        self =
            switch status {
            case .cancelling: .cancelling
            case .cancelled: .cancelled
            default: .booked
            }
    }
}

extension Components.Schemas.Vessel {
    init(_ vessel: Vessel_Vessel) {
        self.init(
            id: vessel.id, name: vessel.name, capacity: vessel.capacity, maxWeight: vessel.maxWeight,
            available: vessel.available, roomCapacity: vessel.roomCapacity, roomWeight: vessel.roomWeight)
    }
}

extension Components.Schemas.Session {
    /// The HTTP form of a login's tokens.
    init(_ token: User_Token) {
        self.init(
            token: token.token, tokenType: .bearer,
            expiresAt: Date(timeIntervalSince1970: TimeInterval(token.expiresAtUnix)),
            refreshToken: token.refreshToken,
            refreshExpiresAt: Date(timeIntervalSince1970: TimeInterval(token.refreshExpiresAtUnix)))
    }
}
