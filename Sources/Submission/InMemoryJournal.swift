import Ethereum
import Synchronization

/// A `Journal` in memory: for unit tests, and for running without persistence (`journal.path: ":memory:"`).
public final class InMemoryJournal: Journal {
    private let records = Mutex<[UInt64: JournalRecord]>([:])

    public init() {}

    public var all: [JournalRecord] { records.withLock { $0.values.sorted { $0.id < $1.id } } }

    public func assigned(id: UInt64, from: Address, nonce: UInt64, idempotencyKey: String?) async throws {
        records.withLock { records in
            if records[id] == nil {
                records[id] = JournalRecord(id: id, from: from, nonce: nonce, state: .assigned, idempotencyKey: idempotencyKey)
            } else {
                records[id]!.nonce = nonce
                records[id]!.state = .assigned
                records[id]!.raw = nil
                records[id]!.hash = nil
            }
        }
    }

    public func signed(id: UInt64, nonce: UInt64, raw: [UInt8], hash: Bytes32) async throws {
        records.withLock { records in
            records[id]?.nonce = nonce
            records[id]?.state = .signed
            records[id]?.raw = raw
            records[id]?.hash = hash
        }
    }

    public func submitted(id: UInt64) async throws { records.withLock { $0[id]?.state = .submitted } }

    public func failed(id: UInt64, reason: String) async throws {
        records.withLock { records in
            records[id]?.state = .failed
            records[id]?.failure = reason
        }
    }

    public func mined(hash: Bytes32, blockNumber: UInt64) async throws {
        records.withLock { records in
            for (id, record) in records where record.hash == hash {
                records[id]?.state = .mined
                records[id]?.blockNumber = blockNumber
            }
        }
    }

    public func lastUsedNonce(from: Address) async throws -> UInt64? {
        records.withLock { records in
            records.values.filter { $0.from == from && [.signed, .submitted, .mined].contains($0.state) }.map(\.nonce).max()
        }
    }

    public func unfinished() async throws -> [JournalRecord] {
        records.withLock { $0.values.filter { $0.state == .signed || $0.state == .submitted }.sorted { $0.id < $1.id } }
    }

    public func record(idempotencyKey: String) async throws -> JournalRecord? {
        records.withLock { $0.values.first { $0.idempotencyKey == idempotencyKey } }
    }

    public func record(id: UInt64) async throws -> JournalRecord? { records.withLock { $0[id] } }

    public func abandonUnsigned() async throws -> Int {
        records.withLock { records in
            let ids = records.values.filter { $0.state == .assigned }.map(\.id)
            for id in ids { records[id]?.state = .abandoned }
            return ids.count
        }
    }

    public func maximumID() async throws -> UInt64 { records.withLock { $0.keys.max() ?? 0 } }
}
