import Ethereum
import Foundation
import Submission
import Testing

@Suite struct JournalTests {
    static let sender = try! Address(hex: "0xa79a48e06746d96fc4ae34cb6b1a8cd99b199886")

    static func exercise(_ journal: any Journal) async throws {
        let hash = Keccak256.hash([1])
        try await journal.assigned(id: 1, from: sender, nonce: 4, idempotencyKey: "k1")
        try await journal.assigned(id: 2, from: sender, nonce: 5, idempotencyKey: nil)
        try await journal.assigned(id: 2, from: sender, nonce: 4, idempotencyKey: nil)  // renumbered
        // A signature that arrives late, for the nonce it had before: the current assignment stands.
        try await journal.signed(id: 2, nonce: 5, raw: [0xCC], hash: Keccak256.hash([3]))
        #expect(try await journal.record(id: 2)?.state == .assigned)
        #expect(try await journal.record(id: 2)?.raw == nil)
        #expect(try await journal.lastAcceptedNonce(from: sender) == nil)  // nothing signed yet
        try await journal.signed(id: 1, nonce: 4, raw: [0xAA], hash: hash)
        // Signed is not accepted: a record the node never took must not push later nonces up.
        #expect(try await journal.lastAcceptedNonce(from: sender) == nil)
        try await journal.submitted(id: 1)
        #expect(try await journal.lastAcceptedNonce(from: sender) == 4)
        #expect(try await journal.record(idempotencyKey: "k1")?.state == .submitted)
        #expect(try await journal.unsettled().map(\.id) == [1])
        // A replacement at the same nonce; the original is mined first: the replacement is settled as replaced.
        let replacementHash = Keccak256.hash([2])
        try await journal.assigned(id: 3, from: sender, nonce: 4, idempotencyKey: nil, requestDigest: nil, replaces: 1)
        try await journal.signed(id: 3, nonce: 4, raw: [0xBB], hash: replacementHash)
        #expect(try await journal.unsettled().map(\.id) == [1, 3])
        try await journal.mined(hash: hash, blockNumber: 9)
        #expect(try await journal.unsettled().isEmpty)
        #expect(try await journal.record(id: 3)?.state == .replaced)
        #expect(try await journal.record(id: 3)?.replaces == 1)
        #expect(try await journal.record(hash: replacementHash)?.id == 3)
        // A reorg puts the mined one back.
        try await journal.unmined(hash: hash)
        #expect(try await journal.record(id: 1)?.state == .submitted)
        try await journal.mined(hash: hash, blockNumber: 9)
        #expect(try await journal.record(id: 1)?.blockNumber == 9)
        #expect(try await journal.abandonUnsigned() == 1)
        #expect(try await journal.record(id: 2)?.state == .abandoned)
        try await journal.failed(id: 2, reason: "nope")
        #expect(try await journal.record(id: 2)?.failure == "nope")
        #expect(try await journal.maximumID() == 3)
    }

    @Test func inMemory() async throws {
        try await Self.exercise(InMemoryJournal())
    }

    @Test func sqliteSurvivesReopening() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("journal-\(UUID().uuidString).sqlite")
            .path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try await Self.exercise(try SQLiteJournal(path: path))
        // A new process opens the same file.
        let reopened = try SQLiteJournal(path: path)
        #expect(try await reopened.lastAcceptedNonce(from: Self.sender) == 4)
        #expect(try await reopened.record(idempotencyKey: "k1")?.raw == [0xAA])
        #expect(try await reopened.maximumID() == 3)
    }

    /// Concurrent writers share commits (GroupCommit): every change that returned is durable, and one that fails
    /// (an idempotency key already taken) fails alone, without undoing the others of its batch.
    @Test func concurrentWritesShareCommitsAndFailAlone() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("journal-\(UUID().uuidString).sqlite")
            .path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let journal = try SQLiteJournal(path: path)
        let count: UInt64 = 400
        let outcomes = try await withThrowingTaskGroup(of: (UInt64, Bool).self) { group in
            for id in 1...count {
                group.addTask {
                    // Every tenth request reuses one key: only the first of them to commit may hold it.
                    let key = id % 10 == 0 ? "shared" : "key-\(id)"
                    do {
                        try await journal.assigned(id: id, from: Self.sender, nonce: id, idempotencyKey: key)
                        try await journal.signed(id: id, nonce: id, raw: [UInt8(id % 256)], hash: Keccak256.hash([UInt8(id % 256), 1]))
                        try await journal.submitted(id: id)
                        return (id, true)
                    } catch {
                        return (id, false)
                    }
                }
            }
            return try await group.reduce(into: [UInt64: Bool]()) { $0[$1.0] = $1.1 }
        }
        let failed = outcomes.filter { !$0.value }.keys.sorted()
        #expect(failed.count == Int(count / 10) - 1)
        #expect(failed.allSatisfy { $0 % 10 == 0 })
        let reopened = try SQLiteJournal(path: path)
        for (id, succeeded) in outcomes {
            let record = try await reopened.record(id: id)
            #expect(succeeded ? record?.state == .submitted : record == nil, "record \(id)")
        }
        #expect(try await reopened.lastAcceptedNonce(from: Self.sender) == outcomes.filter(\.value).keys.max())
    }
}
