import Foundation
import PostgresNIO
import Synchronization
import Testing

/// The databases a test makes on the harness's servers (`TestEnvironment.uniqueDatabase` for MongoDB,
/// `PostgresTestDatabase.create` for PostgreSQL), dropped when the test ends, whether it passed or failed. Every
/// suite that makes one carries this trait; a database made outside its scope fails the test, so none is left
/// behind unnoticed.
package struct DropsItsDatabases: SuiteTrait, TestTrait, TestScoping {
    package var isRecursive: Bool { true }

    package func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        guard testCase != nil else { return try await function() }
        let made = TestDatabases()
        do {
            try await TestDatabases.$current.withValue(made) { try await function() }
        } catch {
            await made.dropAll()
            throw error
        }
        await made.dropAll()
    }
}

extension Trait where Self == DropsItsDatabases {
    /// Drops the databases each test makes when it ends.
    package static var dropsItsDatabases: Self { Self() }
}

/// The databases made in one test's scope.
package final class TestDatabases: Sendable {
    @TaskLocal static var current: TestDatabases?

    private enum Kind { case mongo, postgres }
    private let made = Mutex<[(kind: Kind, name: String)]>([])

    /// Records a MongoDB database to drop.
    static func madeMongo(_ name: String) { record(.mongo, name) }

    /// Records a PostgreSQL database to drop.
    static func madePostgres(_ name: String) { record(.postgres, name) }

    private static func record(_ kind: Kind, _ name: String) {
        guard let current else {
            Issue.record(
                "database \(name) was made outside a suite with the .dropsItsDatabases trait: it would be left")
            return
        }
        current.made.withLock { $0.append((kind, name)) }
    }

    /// Drops them; one that cannot be dropped is an issue of the test (the processes using it have stopped).
    func dropAll() async {
        for (kind, name) in made.withLock({ $0 }) {
            do {
                switch kind {
                case .mongo:
                    try await withMongoClient(database: name, threads: 1) { try await $0.dropDatabase() }
                case .postgres:
                    // FORCE: a connection a killed process left half-closed must not keep the database.
                    try await PostgresTestDatabase.withAdminClient(try TestEnvironment.value("SHIPPY_POSTGRES_URL")) {
                        try await $0.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(name) WITH (FORCE)"))
                    }
                }
            } catch {
                Issue.record("test database \(name) could not be dropped: \(String(reflecting: error))")
            }
        }
    }
}
