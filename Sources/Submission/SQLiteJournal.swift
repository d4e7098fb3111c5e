import Ethereum
import Foundation
import GRDB

/// The embedded `Journal`: one SQLite file (GRDB), WAL mode. With `synchronous = FULL` every commit is on disk
/// before the call returns, so a client never holds a hash the journal could lose, even on power loss. Writes go
/// through `GroupCommit`: the changes of many sends that arrive together share one commit.
public final class SQLiteJournal: Journal {
    private let database: DatabaseQueue
    private let writer: GroupCommit

    public init(path: String) throws {
        var configuration = Configuration()
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        configuration.label = "journal"
        database = try DatabaseQueue(path: path, configuration: configuration)
        if path != ":memory:" {
            try database.writeWithoutTransaction { db in _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL") }
        }
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: "sends") { table in
                table.column("id", .integer).primaryKey()
                table.column("sender", .blob).notNull()
                table.column("nonce", .integer).notNull()
                table.column("state", .text).notNull()
                table.column("raw", .blob)
                table.column("hash", .blob)
                table.column("idempotency_key", .text).unique()
                table.column("block_number", .integer)
                table.column("failure", .text)
                table.column("updated_at", .datetime).notNull().defaults(sql: "CURRENT_TIMESTAMP")
            }
            try db.create(index: "sends_sender_nonce", on: "sends", columns: ["sender", "nonce"])
            try db.create(index: "sends_hash", on: "sends", columns: ["hash"])
            try db.create(index: "sends_state", on: "sends", columns: ["state"])
        }
        migrator.registerMigration("v2: request digests, replacements") { db in
            try db.alter(table: "sends") { table in
                table.add(column: "request_digest", .blob)
                table.add(column: "replaces", .integer)
            }
        }
        try migrator.migrate(database)
        writer = GroupCommit(database: database)
    }

    public func assigned(
        id: UInt64, from: Address, nonce: UInt64, idempotencyKey: String?, requestDigest: Bytes32?,
        replaces: UInt64?
    ) async throws {
        try await writer.write { db in
            try db.execute(
                sql: """
                    INSERT INTO sends (id, sender, nonce, state, idempotency_key, request_digest, replaces)
                    VALUES (?, ?, ?, 'assigned', ?, ?, ?)
                    ON CONFLICT(id) DO UPDATE SET nonce = excluded.nonce, state = 'assigned', raw = NULL, hash = NULL,
                        updated_at = CURRENT_TIMESTAMP
                    """,
                arguments: [
                    Int64(bitPattern: id), Data(from.bytes), Int64(bitPattern: nonce), idempotencyKey,
                    requestDigest.map { Data($0.bytes) }, replaces.map { Int64(bitPattern: $0) },
                ])
        }
    }

    public func signed(id: UInt64, nonce: UInt64, raw: [UInt8], hash: Bytes32) async throws {
        try await writer.write { db in
            try db.execute(
                sql: """
                    UPDATE sends SET state = 'signed', raw = ?, hash = ?, updated_at = CURRENT_TIMESTAMP
                    WHERE id = ? AND nonce = ?
                    """, arguments: [Data(raw), Data(hash.bytes), Int64(bitPattern: id), Int64(bitPattern: nonce)])
        }
    }

    public func submitted(id: UInt64) async throws {
        try await update(id: id, sql: "state = 'submitted'")
    }

    public func failed(id: UInt64, reason: String) async throws {
        try await writer.write { db in
            try db.execute(
                sql: "UPDATE sends SET state = 'failed', failure = ?, updated_at = CURRENT_TIMESTAMP WHERE id = ?",
                arguments: [reason, Int64(bitPattern: id)])
        }
    }

    public func replaced(id: UInt64) async throws {
        try await update(id: id, sql: "state = 'replaced'")
    }

    public func mined(hash: Bytes32, blockNumber: UInt64) async throws {
        try await writer.write { db in
            try db.execute(
                sql: """
                    UPDATE sends SET state = 'mined', block_number = ?, updated_at = CURRENT_TIMESTAMP WHERE hash = ?
                    """, arguments: [Int64(bitPattern: blockNumber), Data(hash.bytes)])
            try db.execute(
                sql: """
                    UPDATE sends SET state = 'replaced', updated_at = CURRENT_TIMESTAMP
                    WHERE state IN ('signed', 'submitted') AND hash != ?
                      AND (sender, nonce) IN (SELECT sender, nonce FROM sends WHERE hash = ?)
                    """, arguments: [Data(hash.bytes), Data(hash.bytes)])
        }
    }

    public func unmined(hash: Bytes32) async throws {
        try await writer.write { db in
            try db.execute(
                sql: """
                    UPDATE sends SET state = 'submitted', block_number = NULL, updated_at = CURRENT_TIMESTAMP
                    WHERE hash = ? AND state = 'mined'
                    """, arguments: [Data(hash.bytes)])
        }
    }

    public func lastAcceptedNonce(from: Address) async throws -> UInt64? {
        try await database.read { db in
            try Int64.fetchOne(
                db,
                sql: """
                    SELECT MAX(nonce) FROM sends WHERE sender = ? AND state IN ('submitted', 'mined', 'replaced')
                    """, arguments: [Data(from.bytes)]
            ).map { UInt64(bitPattern: $0) }
        }
    }

    public func unsettled() async throws -> [JournalRecord] {
        try await database.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM sends WHERE state IN ('signed', 'submitted') ORDER BY sender, nonce, id
                    """
            ).compactMap(Self.record)
        }
    }

    public func record(hash: Bytes32) async throws -> JournalRecord? {
        try await database.read { db in
            try Row.fetchOne(
                db, sql: "SELECT * FROM sends WHERE hash = ? ORDER BY id DESC LIMIT 1",
                arguments: [Data(hash.bytes)]
            ).flatMap(Self.record)
        }
    }

    public func record(idempotencyKey: String) async throws -> JournalRecord? {
        try await database.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM sends WHERE idempotency_key = ?", arguments: [idempotencyKey])
                .flatMap(Self.record)
        }
    }

    public func record(id: UInt64) async throws -> JournalRecord? {
        try await database.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM sends WHERE id = ?", arguments: [Int64(bitPattern: id)]).flatMap(
                Self.record)
        }
    }

    public func abandonUnsigned() async throws -> Int {
        try await writer.write { db in
            try db.execute(
                sql: "UPDATE sends SET state = 'abandoned', updated_at = CURRENT_TIMESTAMP WHERE state = 'assigned'")
            return db.changesCount
        }
    }

    public func maximumID() async throws -> UInt64 {
        try await database.read { db in
            UInt64(bitPattern: try Int64.fetchOne(db, sql: "SELECT MAX(id) FROM sends") ?? 0)
        }
    }

    private func update(id: UInt64, sql: String) async throws {
        try await writer.write { db in
            try db.execute(
                sql: "UPDATE sends SET \(sql), updated_at = CURRENT_TIMESTAMP WHERE id = ?",
                arguments: [Int64(bitPattern: id)])
        }
    }

    private static func record(_ row: Row) -> JournalRecord? {
        guard let sender: Data = row["sender"], let from = Address(sender),
            let state = JournalRecord.State(rawValue: row["state"])
        else { return nil }
        let raw: Data? = row["raw"]
        let hash: Data? = row["hash"]
        let block: Int64? = row["block_number"]
        let digest: Data? = row["request_digest"]
        let replaces: Int64? = row["replaces"]
        return JournalRecord(
            id: UInt64(bitPattern: row["id"]), from: from, nonce: UInt64(bitPattern: row["nonce"]), state: state,
            raw: raw.map { Array($0) }, hash: hash.flatMap { Bytes32($0) }, idempotencyKey: row["idempotency_key"],
            blockNumber: block.map { UInt64(bitPattern: $0) }, failure: row["failure"],
            requestDigest: digest.flatMap { Bytes32($0) }, replaces: replaces.map { UInt64(bitPattern: $0) })
    }
}
