import Foundation
import ShippyDomain
import ShippyMongo
import ShippyTestSupport
import Testing

/// MongoDB over verified TLS through the real C driver: a server of the harness's kind (`SHIPPY_MONGOD`) that takes
/// TLS only, from clients with a certificate of its authority. `MONGO_URL` carries libmongoc's own options
/// (`tls=true&tlsCAFile=…&tlsCertificateKeyFile=…`): with them a service stores and reads; in plaintext, with
/// another authority, or without its certificate it gets no connection, and says MongoDB is unavailable.
@Suite(.timeLimit(.minutes(2))) struct MongoTLSTests {
    @Test func theDriverTalksToMongoDBOverVerifiedTLSWithItsCertificateOnly() async throws {
        let authority = try TestAuthority()
        let port = try freePort()
        let mongo = try MongoServer(port: port, tls: try authority.issue("mongo"))
        try await cleaningUp({ await mongo.process.stop() }) {
            try await mongo.waitUntilListening()
            let folder = (authority.bundle as NSString).deletingLastPathComponent
            let identity = try authority.issue("vessel-service").combined(in: folder)
            let base = "mongodb://127.0.0.1:\(port)/?serverSelectionTimeoutMS=2000&connectTimeoutMS=2000"
            let verified = "\(base)&tls=true&tlsCAFile=\(authority.bundle)&tlsCertificateKeyFile=\(identity)"
            try await withMongoClient(url: verified, database: "shippy", threads: 1) { client in
                try await client.insertOne(["_id": .string("over-tls")], into: "probes")
                #expect(try await client.count(in: "probes") == 1)
            }

            let stranger = try TestAuthority(name: "Another CA")
            let strangerIdentity = try stranger.issue("vessel-service").combined(in: folder)
            for (what, url) in [
                ("plaintext", base),
                ("no client certificate", "\(base)&tls=true&tlsCAFile=\(authority.bundle)"),
                (
                    "another authority",
                    "\(base)&tls=true&tlsCAFile=\(stranger.bundle)&tlsCertificateKeyFile=\(identity)"
                ),
                (
                    "a certificate of another authority",
                    "\(base)&tls=true&tlsCAFile=\(authority.bundle)&tlsCertificateKeyFile=\(strangerIdentity)"
                ),
            ] {
                await #expect(throws: ShippyError.self, "\(what)") {
                    try await withMongoClient(url: url, database: "shippy", threads: 1) { try await $0.ping() }
                }
            }
        }
    }
}
