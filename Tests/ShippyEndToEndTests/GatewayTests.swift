import Foundation
import ShippyDomain
import ShippyTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// api-gateway over HTTP, as curl would use it, in front of the real services: every resource, every error
/// status with its problem+json, the security headers, the body limit, the rate limit, and an Idempotency-Key
/// retry that books once.
@Suite(.timeLimit(.minutes(3)), .dropsItsDatabases) struct GatewayTests {
    let system: ShippySystem
    let admin = "admin-\(UUID().uuidString.prefix(8))@example.com"

    init() throws { system = try ShippySystem() }

    func startGateway(
        user: ServiceProcess, consignment: ServiceProcess, vessel: ServiceProcess, extra: [String: String] = [:]
    ) async throws -> ServiceProcess {
        let gateway = try ServiceProcess.start(
            "api-gateway",
            environment: [
                "USER_SERVICE_ADDRESS": "127.0.0.1:\(user.port)",
                "CONSIGNMENT_SERVICE_ADDRESS": "127.0.0.1:\(consignment.port)",
                "VESSEL_SERVICE_ADDRESS": "127.0.0.1:\(vessel.port)",
            ].merging(try ShippySystem.harnessNATS(unless: extra)) { $1 }.merging(extra) { $1 })
        let ready = await eventually(within: .seconds(30)) {
            (try? await http("GET", "http://127.0.0.1:\(gateway.port)/readyz"))?.status == 200
        }
        try #require(ready, "the gateway never became ready; its log:\n\(gateway.process.errorOutput)")
        return gateway
    }

    /// A gateway whose services never answer (the edge's own behaviour needs none), live for `body`, then stopped.
    /// - Parameter https: the authority's bundle when the gateway serves HTTPS (then curl asks whether it is live).
    func withGatewayAlone(
        _ environment: [String: String], https: String? = nil, _ body: (ServiceProcess) async throws -> Void
    ) async throws {
        let silent = try SilentListener()
        let gateway = try ServiceProcess.start(
            "api-gateway",
            environment: [
                "USER_SERVICE_ADDRESS": "127.0.0.1:\(silent.port)",
                "CONSIGNMENT_SERVICE_ADDRESS": "127.0.0.1:\(silent.port)",
                "VESSEL_SERVICE_ADDRESS": "127.0.0.1:\(silent.port)",
            ].merging(environment) { $1 })
        try await cleaningUp({ await gateway.process.stop() }) {
            let live = await eventually(within: .seconds(30)) {
                guard let https else {
                    return (try? await http("GET", "http://127.0.0.1:\(gateway.port)/openapi.yaml"))?.status == 200
                }
                let url = "https://127.0.0.1:\(gateway.port)/openapi.yaml"
                return (try? await curl(["--cacert", https, "-o", "/dev/null", url]))?.status == 0
            }
            try #require(live, "the gateway did not start: \(gateway.process.errorOutput)")
            try await body(gateway)
        }
    }

    /// A problem+json answer with `status` whose detail holds `detail`.
    func expectProblem(
        _ exchange: HTTPExchange, _ status: Int, _ detail: String, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(exchange.status == status, "\(exchange)", sourceLocation: sourceLocation)
        #expect(exchange.headers["content-type"] == "application/problem+json", sourceLocation: sourceLocation)
        #expect(exchange.json["status"] as? Int == status, sourceLocation: sourceLocation)
        #expect(exchange.json["type"] as? String == "about:blank", sourceLocation: sourceLocation)
        let text = exchange.json["detail"] as? String ?? ""
        #expect(text.contains(detail), "detail: \(text)", sourceLocation: sourceLocation)
    }

    @Test func everyResourceAndEveryErrorStatusOverHTTP() async throws {
        let vessel = try system.startVessel()
        let user = try await system.startUser(extra: ["BCRYPT_COST": "4"])
        let consignment = try system.startConsignment(vessel: vessel)
        var services = [vessel, user, consignment]
        try await cleaningUp({ await ShippySystem.stopAll(services) }) {
            for service in services { try await service.waitUntilServing() }
            let gateway = try await startGateway(user: user, consignment: consignment, vessel: vessel)
            services.append(gateway)
            let base = "http://127.0.0.1:\(gateway.port)"

            // The process, the contract, the web app, and the headers on every answer.
            #expect(try await http("GET", "\(base)/healthz").json["status"] as? String == "ok")
            let ready = try await http("GET", "\(base)/readyz")
            #expect(
                ready.json["services"] as? [String: String] == [
                    "user-service": "SERVING", "consignment-service": "SERVING", "vessel-service": "SERVING",
                ])
            let document = try await http("GET", "\(base)/openapi.yaml")
            #expect(document.status == 200 && document.text.hasPrefix("openapi: 3.1.0"))
            let page = try await http("GET", "\(base)/")
            #expect(page.status == 200 && page.text.contains("<title>Shippy</title>"))
            for exchange in [page, document, ready] {
                let policy = exchange.headers["content-security-policy"] ?? ""
                #expect(policy.contains("script-src 'self'") && !policy.contains("unsafe-inline"), "\(policy)")
                #expect(exchange.headers["x-content-type-options"] == "nosniff")
                #expect(exchange.headers["referrer-policy"] == "no-referrer")
                #expect(exchange.headers["strict-transport-security"] == nil, "HSTS over HTTPS only")
            }
            expectProblem(try await http("GET", "\(base)/v1/nowhere"), 404, "not found")
            // A method the path does not have: 405, and what it has; HEAD wherever GET.
            #expect(try await http("HEAD", "\(base)/openapi.yaml").status == 200)
            for (method, path, allow) in [
                ("TRACE", "/v1/users", "POST"), ("DELETE", "/v1/consignments/", "GET, HEAD, POST"),
                ("PUT", "/openapi.yaml", "GET, HEAD"),
            ] {
                let refused = try await http(method, "\(base)\(path)")
                expectProblem(refused, 405, "takes \(allow)")
                #expect(refused.headers["allow"] == allow, "\(method) \(path): \(refused.headers)")
            }

            // Sign up and log in.
            let password = "correct horse battery"
            let shipper = [
                "name": "Ewan", "email": "ewan-\(UUID().uuidString.prefix(8).lowercased())@example.com",
                "company": "BBC", "password": password,
            ]
            let created = try await http("POST", "\(base)/v1/users", json: shipper)
            #expect(created.status == 201, "\(created)")
            #expect(created.json["roles"] as? [String] == ["user"] && created.json["password"] == nil)
            #expect(!created.text.contains(password) && !created.text.contains("$2"))
            // A taken address is answered like a new one (its owner is mailed instead): no one learns who has an account.
            let again = try await http("POST", "\(base)/v1/users", json: shipper)
            #expect(again.status == 201 && again.json["id"] as? String != created.json["id"] as? String, "\(again)")
            expectProblem(
                try await http(
                    "POST", "\(base)/v1/users", json: ["name": "A", "email": "a@b.example", "password": "short"]),
                422, "password must be at least 8")
            expectProblem(
                try await http("POST", "\(base)/v1/users", json: shipper.merging(["role": "admin"]) { $1 }), 400,
                "field `role` is not a known field")
            expectProblem(
                try await http(
                    "POST", "\(base)/v1/users", json: ["name": 7, "email": "x@y.example", "password": "12345678"]),
                400, "field `name` must be a string")
            expectProblem(
                try await http(
                    "POST", "\(base)/v1/users", headers: ["Content-Type": "application/json"],
                    body: Data("{\"name\": ".utf8)), 400, "not valid JSON")
            expectProblem(
                try await http(
                    "POST", "\(base)/v1/users", json: ["name": String(repeating: "x", count: 5 << 20)]), 413,
                "larger than 4096 KiB")

            let session = try await http(
                "POST", "\(base)/v1/sessions", json: ["email": shipper["email"]!, "password": password])
            #expect(session.status == 200 && session.json["token_type"] as? String == "Bearer", "\(session)")
            let token = try #require(session.json["token"] as? String)
            let expiry = try #require(ISO8601DateFormatter().date(from: session.json["expires_at"] as? String ?? ""))
            // Access tokens live minutes (15 by default); the refresh token gets the next one.
            #expect(expiry > Date().addingTimeInterval(600) && expiry < Date().addingTimeInterval(1000))
            let refreshToken = try #require(session.json["refresh_token"] as? String)
            let renewed = try await http("POST", "\(base)/v1/sessions/refresh", json: ["refresh_token": refreshToken])
            #expect(renewed.status == 200 && renewed.json["refresh_token"] as? String != refreshToken, "\(renewed)")
            expectProblem(
                try await http("POST", "\(base)/v1/sessions/refresh", json: ["refresh_token": refreshToken]), 401,
                "used before")
            let loggedOut = try await http(
                "POST", "\(base)/v1/sessions/logout", json: ["refresh_token": renewed.json["refresh_token"] ?? ""])
            #expect(loggedOut.status == 204, "\(loggedOut)")
            expectProblem(
                try await http(
                    "POST", "\(base)/v1/sessions", json: ["email": shipper["email"]!, "password": "wrong password"]),
                401, "wrong email or password")
            let bearer = ["Authorization": "Bearer \(token)"]

            let me = try await http("GET", "\(base)/v1/users/me", headers: bearer)
            #expect(me.status == 200 && me.json["email"] as? String == shipper["email"], "\(me)")
            expectProblem(try await http("GET", "\(base)/v1/users/me"), 401, "Authorization: Bearer")
            expectProblem(
                try await http(
                    "GET", "\(base)/v1/users/me", headers: ["Authorization": "Bearer \(token.dropLast(4))AAAA"]),
                401, "invalid token")

            // The fleet, and a vessel only an admin may add.
            let fleet = try await http("GET", "\(base)/v1/vessels?page_size=500", headers: bearer)
            #expect(fleet.status == 200, "\(fleet)")
            let room = { (exchange: HTTPExchange, id: String) -> Int? in
                (exchange.json["vessels"] as? [[String: Any]])?.first { $0["id"] as? String == id }?["room_capacity"]
                    as? Int
            }
            #expect(room(fleet, "vessel003") == 12)
            let newVessel: [String: Any] = [
                "id": "gw-\(UUID().uuidString.prefix(8))", "name": "Gateway", "capacity": 4,
                "max_weight": 40_000,
            ]
            expectProblem(try await http("POST", "\(base)/v1/vessels", headers: bearer, json: newVessel), 403, "admin")
            try await http("POST", "\(base)/v1/users", json: ["name": "Admin", "email": admin, "password": password])
                .status.expect(201)
            // The operator makes the first admin; nothing at sign-up can.
            #expect(try await user.command(["grant-admin", admin]).contains("is now an admin"))
            let adminToken = try #require(
                try await http("POST", "\(base)/v1/sessions", json: ["email": admin, "password": password]).json[
                    "token"]
                    as? String)
            let added = try await http(
                "POST", "\(base)/v1/vessels", headers: ["Authorization": "Bearer \(adminToken)"], json: newVessel)
            #expect(added.status == 201 && added.json["room_capacity"] as? Int == 4, "\(added)")
            expectProblem(
                try await http(
                    "POST", "\(base)/v1/vessels", headers: ["Authorization": "Bearer \(adminToken)"], json: newVessel),
                409, "already exists")

            // Ship the sample, and retry it with the same Idempotency-Key: one booking.
            let sample: [String: Any] = [
                "description": "This is a test consignment", "weight": 55_000,
                "containers": [
                    ["customer_id": "cust001", "user_id": "user001", "origin": "Manchester, United Kingdom"],
                    ["customer_id": "cust002", "user_id": "user001", "origin": "Derby, United Kingdom"],
                    ["customer_id": "cust005", "user_id": "user001", "origin": "Sheffield, United Kingdom"],
                ],
            ]
            let key = ["Idempotency-Key": "gateway-test-\(UUID().uuidString)"]
            let shipped = try await http(
                "POST", "\(base)/v1/consignments", headers: bearer.merging(key) { $1 }, json: sample)
            #expect(shipped.status == 201 && shipped.json["vessel_id"] as? String == "vessel003", "\(shipped)")
            let retried = try await http(
                "POST", "\(base)/v1/consignments", headers: bearer.merging(key) { $1 }, json: sample)
            #expect(retried.status == 201 && retried.json["id"] as? String == shipped.json["id"] as? String)
            #expect(room(try await http("GET", "\(base)/v1/vessels?page_size=500", headers: bearer), "vessel003") == 9)
            try await http("POST", "\(base)/v1/consignments", headers: bearer, json: sample).status.expect(201)
            // Fair use: a container weighs what a container can, and one user holds at most the quota (by default
            // 10,000,000 kg; the two bookings above hold 110,000).
            expectProblem(
                try await http(
                    "POST", "\(base)/v1/consignments", headers: bearer,
                    json: [
                        "description": "too heavy", "weight": 49_000_000,
                        "containers": [["customer_id": "c", "origin": "o"]],
                    ]), 422, "weight must be at most 30480 kg per container")
            let container = ["customer_id": "c", "origin": "o"]
            expectProblem(
                try await http(
                    "POST", "\(base)/v1/consignments", headers: bearer,
                    json: [
                        "description": "more than my share", "weight": 10_000_000,
                        "containers": Array(repeating: container, count: 400),
                    ]), 409,
                "does not fit your quota: your open consignments hold 6 of 1000 containers and 110000 of 10000000 kg")
            expectProblem(
                try await http(
                    "POST", "\(base)/v1/consignments", headers: bearer,
                    json: ["description": "x", "weight": 1, "containers": [["customer_id": "c"]]]), 400,
                "field `containers[0].origin` is required")
            expectProblem(try await http("POST", "\(base)/v1/consignments", json: sample), 401, "token")
            // A header is held to its declared rule, and a text to the document's pattern.
            expectProblem(
                try await http(
                    "POST", "\(base)/v1/consignments", headers: bearer.merging(["Idempotency-Key": "two words"]) { $1 },
                    json: sample), 400, "Idempotency-Key header is not valid")
            expectProblem(
                try await http(
                    "POST", "\(base)/v1/consignments", headers: bearer,
                    json: ["description": "x", "weight": 1, "containers": [["customer_id": "c", "origin": "a\u{7}b"]]]),
                422, "must not contain control characters")

            // Failed logins past the free ones are throttled by user-service: 429, and Retry-After says the wait
            // the detail says (the first throttled answer comes within a few tries: the waits double).
            var throttled: HTTPExchange?
            for _ in 0..<10 where throttled == nil {
                let login = try await http(
                    "POST", "\(base)/v1/sessions", json: ["email": shipper["email"]!, "password": "wrong password"])
                if login.status == 429 { throttled = login }
            }
            let limited = try #require(throttled, "no failed login was throttled")
            expectProblem(limited, 429, "too many failed logins")
            let detail = limited.json["detail"] as? String ?? ""
            #expect(
                detail.hasSuffix("retry in \(limited.headers["retry-after"] ?? "?") s"), "\(detail) \(limited.headers)")

            // One consignment: yours (or an admin's to see), with its status; to anyone else it does not exist.
            let id = try #require(shipped.json["id"] as? String)
            #expect(shipped.json["status"] as? String == "booked")
            let one = try await http("GET", "\(base)/v1/consignments/\(id)", headers: bearer)
            #expect(one.status == 200 && one.json["id"] as? String == id && one.json["status"] as? String == "booked")
            let admin = ["Authorization": "Bearer \(adminToken)"]
            #expect(try await http("GET", "\(base)/v1/consignments/\(id)", headers: admin).status == 200)
            expectProblem(try await http("GET", "\(base)/v1/consignments/\(id)"), 401, "token")
            expectProblem(
                try await http("GET", "\(base)/v1/consignments/no-such-thing", headers: bearer), 404,
                "no consignment no-such-thing of yours")
            // Cancelled, by an admin for the shipper (forced): the room comes back, once.
            for _ in 0..<2 {
                let cancelled = try await http("POST", "\(base)/v1/consignments/\(id)/cancel", headers: admin)
                #expect(cancelled.status == 200 && cancelled.json["status"] as? String == "cancelled", "\(cancelled)")
                #expect(cancelled.json["cancelled_by"] as? String != nil)
                #expect(
                    room(try await http("GET", "\(base)/v1/vessels?page_size=500", headers: bearer), "vessel003") == 12)
            }
            #expect(
                try await http("GET", "\(base)/v1/consignments/\(id)", headers: bearer).json["status"] as? String
                    == "cancelled")
            expectProblem(
                try await http("DELETE", "\(base)/v1/consignments/\(id)", headers: bearer), 405,
                "takes GET, HEAD, not DELETE")

            // Your consignments, a page at a time.
            let first = try await http("GET", "\(base)/v1/consignments?page_size=1", headers: bearer)
            #expect((first.json["consignments"] as? [Any])?.count == 1, "\(first)")
            let next = try #require(first.json["next_page_token"] as? String)
            let second = try await http(
                "GET", "\(base)/v1/consignments?page_size=1&page_token=\(next)", headers: bearer)
            #expect((second.json["consignments"] as? [Any])?.count == 1 && second.json["next_page_token"] == nil)
            expectProblem(
                try await http("GET", "\(base)/v1/consignments?page_size=abc", headers: bearer), 400, "page_size")
            expectProblem(
                try await http("GET", "\(base)/v1/consignments?page_size=501", headers: bearer), 400, "at most 500")

            // A service down: 503 without internals, and /readyz says which.
            await vessel.process.stop()
            let down = try await http("GET", "\(base)/v1/vessels", headers: bearer)
            expectProblem(down, 503, "retry in a moment")
            #expect(!down.text.contains("127.0.0.1"))
            let logged = await eventually(within: .seconds(10)) {
                gateway.process.errorOutput.contains("request failed")
            }
            #expect(logged, "the failure is logged")
            #expect(!gateway.process.errorOutput.contains(token), "the log never holds a bearer token")
            let notReady = try await http("GET", "\(base)/readyz")
            #expect(
                notReady.status == 503
                    && (notReady.json["services"] as? [String: String])?["vessel-service"] != "SERVING")
        }
    }

    @Test func aServiceThatNeverAnswersIsA504AndTooManyLoginsAre429WithRetryAfter() async throws {
        let vessel = try system.startVessel()
        let user = try await system.startUser(extra: ["BCRYPT_COST": "4"])
        let consignment = try system.startConsignment(vessel: vessel)
        let silent = try SilentListener()
        var services = [vessel, user, consignment]
        try await cleaningUp({ await ShippySystem.stopAll(services) }) {
            for service in services { try await service.waitUntilServing() }
            let gateway = try await startGateway(
                user: user, consignment: consignment, vessel: vessel,
                extra: ["RATE_LIMIT_AUTH": "3"])
            services.append(gateway)
            let base = "http://127.0.0.1:\(gateway.port)"
            let login = ["email": "nobody@example.com", "password": "not the password"]
            // The same route however its path is spelled: a trailing slash is no way around the limit.
            for path in ["/v1/sessions", "/v1/sessions/", "/v1/sessions"] {
                expectProblem(try await http("POST", "\(base)\(path)", json: login), 401, "wrong")
            }
            let limited = try await http("POST", "\(base)/v1/sessions/", json: login)
            expectProblem(limited, 429, "too many")
            #expect(Int(limited.headers["retry-after"] ?? "") ?? 0 >= 1, "\(limited.headers)")
            // Other routes are not limited.
            #expect(try await http("GET", "\(base)/healthz").status == 200)

            let hanging = try ServiceProcess.start(
                "api-gateway",
                environment: [
                    "USER_SERVICE_ADDRESS": "127.0.0.1:\(silent.port)", "REQUEST_TIMEOUT": "1",
                    "CONSIGNMENT_SERVICE_ADDRESS": "127.0.0.1:\(consignment.port)",
                    "VESSEL_SERVICE_ADDRESS": "127.0.0.1:\(vessel.port)",
                ])
            services.append(hanging)
            let live = await eventually(within: .seconds(30)) {
                (try? await http("GET", "http://127.0.0.1:\(hanging.port)/healthz"))?.status == 200
            }
            try #require(live, "the gateway did not start: \(hanging.process.errorOutput)")
            expectProblem(
                try await http("POST", "http://127.0.0.1:\(hanging.port)/v1/sessions", json: login), 504, "in time")
        }
    }

    /// A client that sends its head a byte at a time (slowloris) or nothing at all holds a connection for the idle
    /// timeout (here 1 s), not for ever; the gateway answers others meanwhile.
    @Test func aConnectionThatSendsNoCompleteHeadIsClosed() async throws {
        try await withGatewayAlone(["HTTP_IDLE_TIMEOUT": "1"]) { gateway in
            let slow = try RawConnection(port: gateway.port)
            let started = ContinuousClock.now
            var closed = false
            for byte in "GET /openapi.yaml HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ".utf8 {
                guard slow.send([byte]) else {
                    closed = true
                    break
                }
                try await Task.sleep(for: .milliseconds(200))
                if ContinuousClock.now - started > .seconds(15) { break }
            }
            closed = closed || slow.isClosedByPeer
            #expect(closed, "the slow head still held its connection after \(ContinuousClock.now - started)")
            #expect((try await http("GET", "http://127.0.0.1:\(gateway.port)/openapi.yaml")).status == 200)
        }
    }

    @Test func aBodyTrickledPastTheReadTimeoutIsA408AndItsConnectionIsClosed() async throws {
        try await withGatewayAlone(["HTTP_IDLE_TIMEOUT": "2", "HTTP_READ_TIMEOUT": "1"]) { gateway in
            let slow = try RawConnection(port: gateway.port)
            let head =
                "POST /v1/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                + "Content-Length: 1000\r\n\r\n"
            #expect(slow.send(Array(head.utf8)))
            // A byte every 200 ms: never idle for the 2 s idle timeout, never done within the 1 s read timeout.
            let started = ContinuousClock.now
            var closed = false
            while !closed, ContinuousClock.now - started < .seconds(15) {
                closed = !slow.send(Array("{".utf8)) || slow.isClosedByPeer
                try await Task.sleep(for: .milliseconds(200))
            }
            let answer = String(decoding: slow.received, as: UTF8.self)
            #expect(closed, "the trickled body still held its connection after \(ContinuousClock.now - started)")
            #expect(answer.hasPrefix("HTTP/1.1 408"), "answered: \(answer)")
            #expect(answer.contains("did not arrive within 1 s"), "answered: \(answer)")
            #expect((try await http("GET", "http://127.0.0.1:\(gateway.port)/openapi.yaml")).status == 200)
        }
    }
}

extension GatewayTests {
    /// Given a certificate, the gateway serves HTTPS only, with Strict-Transport-Security on every answer: curl
    /// trusting the authority gets the document; curl trusting another refuses the certificate; plain HTTP to the
    /// port gets no answer; and the gateway's healthcheck asks over HTTPS.
    @Test func givenACertificateTheGatewayServesHTTPSWithStrictTransportSecurity() async throws {
        let authority = try TestAuthority()
        let certificate = try authority.issue("shippy.example")
        try await withGatewayAlone(
            ["HTTPS_CERTIFICATE": certificate.certificate, "HTTPS_KEY": certificate.key], https: authority.bundle
        ) { gateway in
            let url = "https://127.0.0.1:\(gateway.port)/openapi.yaml"
            let answer = try await curl(["--cacert", authority.bundle, "-D", "-", "-o", "/dev/null", url])
            #expect(answer.status == 0 && answer.output.hasPrefix("HTTP/1.1 200"), "\(answer)")
            #expect(answer.output.lowercased().contains("strict-transport-security: max-age=31536000"), "\(answer)")
            let distrusted = try await curl(["-o", "/dev/null", url])
            #expect(distrusted.status == 60, "curl's 'certificate problem': \(distrusted)")
            let plain = try await curl(["-o", "/dev/null", "http://127.0.0.1:\(gateway.port)/openapi.yaml"])
            #expect(plain.status != 0, "plain HTTP answered: \(plain)")
            let health = try await gateway.command(["healthcheck", "--path", "/healthz"])
            #expect(health.contains("HTTP 200"), "\(health)")
        }
    }

    /// curl (Debian's, installed by `make test`), quiet but for errors, 5 s at most.
    func curl(_ arguments: [String]) async throws -> ToolRun {
        try await runCommand(URL(fileURLWithPath: "/usr/bin/curl"), ["-sS", "--max-time", "5"] + arguments)
    }
}

extension Int {
    fileprivate func expect(_ status: Int, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(self == status, sourceLocation: sourceLocation)
    }
}

/// A port of 127.0.0.1 that takes connections and never answers: a service that hangs.
final class SilentListener {
    let port: Int
    private let socket: Int32

    init() throws {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.socket = socket
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) }
        }
        guard bound == 0, listen(socket, 16) == 0 else {
            close(socket)
            throw POSIXError(.EADDRINUSE)
        }
        withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(socket, $0, &length) }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(socket) }
}
