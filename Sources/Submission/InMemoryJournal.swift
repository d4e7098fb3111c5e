import Ethereum
import Synchronization

/// A `Journal` in memory: for unit tests, and for running without persistence (`journal.path: ":memory:"`).
/// `failWrites` lets a test make every write throw, as a full disk would.
public final class InMemoryJournal: Journal {
    public struct WriteFailed: Error, CustomStringConvertible {
        public var description: String { "journal write failed (simulated)" }
    }

    private let records = Mutex<[UInt64: JournalRecord]>([:])
    private let failing = Atomic<Bool>(false)

    public init() {}

    public var all: [JournalRecord] { records.withLock { $0.values.sorted { $0.id < $1.id } } }

    /// While `true`, every write throws `WriteFailed`.
    public var failWrites: Bool {
        get { failing.load(ordering: .relaxed) }
        set { failing.store(newValue, ordering: .relaxed) }
    }

    private func write<T>(_ body: (inout [UInt64: JournalRecord]) -> T) throws -> T {
        if failWrites { throw WriteFailed() }
        return records.withLock { body(&$0) }
    }

    public func assigned(
        id: UInt64, from: Address, nonce: UInt64, idempotencyKey: String?, requestDigest: Bytes32?,
        replaces: UInt64?
    ) async throws {
        try write { records in
            if records[id] == nil {
                records[id] = JournalRecord(
                    id: id, from: from, nonce: nonce, state: .assigned, idempotencyKey: idempotencyKey,
                    requestDigest: requestDigest, replaces: replaces)
            } else {
                records[id]!.nonce = nonce
                records[id]!.state = .assigned
                records[id]!.raw = nil
                records[id]!.hash = nil
            }
        }
    }

    public func signed(id: UInt64, nonce: UInt64, raw: [UInt8], hash: Bytes32) async throws {
        try write { records in
            guard records[id]?.nonce == nonce else { return }
            records[id]?.state = .signed
            records[id]?.raw = raw
            records[id]?.hash = hash
        }
    }

    public func submitted(id: UInt64) async throws { try write { $0[id]?.state = .submitted } }

    public func failed(id: UInt64, reason: String) async throws {
        try write { records in
            records[id]?.state = .failed
            records[id]?.failure = reason
        }
    }

    public func replaced(id: UInt64) async throws { try write { $0[id]?.state = .replaced } }

    public func mined(hash: Bytes32, blockNumber: UInt64) async throws {
        try write { records in
            guard let minedRecord = records.values.first(where: { $0.hash == hash }) else { return }
            for (id, record) in records {
                if record.hash == hash {
                    records[id]?.state = .mined
                    records[id]?.blockNumber = blockNumber
                } else if record.from == minedRecord.from && record.nonce == minedRecord.nonce
                    && (record.state == .signed || record.state == .submitted)
                {
                    records[id]?.state = .replaced
                }
            }
        }
    }

    public func unmined(hash: Bytes32) async throws {
        try write { records in
            for (id, record) in records where record.hash == hash && record.state == .mined {
                records[id]?.state = .submitted
                records[id]?.blockNumber = nil
            }
        }
    }

    public func lastAcceptedNonce(from: Address) async throws -> UInt64? {
        records.withLock { records in
            records.values.filter { $0.from == from && [.submitted, .mined, .replaced].contains($0.state) }
                .map(\.nonce).max()
        }
    }

    public func unsettled() async throws -> [JournalRecord] {
        records.withLock { records in
            records.values.filter { $0.state == .signed || $0.state == .submitted }
                .sorted { ($0.from, $0.nonce, $0.id) < ($1.from, $1.nonce, $1.id) }
        }
    }

    public func record(idempotencyKey: String) async throws -> JournalRecord? {
        records.withLock { $0.values.first { $0.idempotencyKey == idempotencyKey } }
    }

    public func record(id: UInt64) async throws -> JournalRecord? { records.withLock { $0[id] } }

    public func record(hash: Bytes32) async throws -> JournalRecord? {
        records.withLock { $0.values.filter { $0.hash == hash }.max { $0.id < $1.id } }
    }

    public func abandonUnsigned() async throws -> Int {
        try write { records in
            let ids = records.values.filter { $0.state == .assigned }.map(\.id)
            for id in ids { records[id]?.state = .abandoned }
            return ids.count
        }
    }

    public func maximumID() async throws -> UInt64 { records.withLock { $0.keys.max() ?? 0 } }
}
