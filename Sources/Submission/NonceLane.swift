import Ethereum
import Signers

/// One sending address's queue, as a value: nonces are assigned here (under the pipeline's lock, microseconds,
/// never across I/O), signatures are requested concurrently, and transactions go to the node strictly in nonce
/// order, one at a time.
///
/// Why one at a time: if n+1 reached the node before n's rejection was known, a rejected n would leave a gap that
/// only a replacement transaction could fill — exactly what this lane exists to prevent. Signing, the slow part with
/// remote HSMs (5–50 ms), stays fully concurrent; submission to a node costs about a round trip.
///
/// Invariants (each tested in NonceLaneTests):
/// - no gap reaches the node: when n fails for good, every later unsubmitted transaction is renumbered and re-signed;
/// - no nonce is used twice: nonces come from `next`, which never goes below the node's count after a resync;
/// - a stale signature (for a nonce since renumbered) is never submitted.
public struct NonceLane: Sendable {
    public typealias RequestID = UInt64

    public enum Action: Sendable, Equatable {
        /// Ask the node for the address's pending transaction count, then call `synced`.
        case sync
        /// Record the assignment durably, then sign `transaction` (its nonce is set); report with `attempt`.
        case sign(RequestID, Transaction, attempt: Int)
        /// Send this signed transaction; report with `submitted` or `submitFailed`.
        case submit(RequestID, SignedTransaction)
        /// The transaction reached the node: answer the client with its hash.
        case succeeded(RequestID, SignedTransaction)
        /// The request failed for good and nothing of it reached the node.
        case failed(RequestID, LaneFailure)
    }

    public enum LaneFailure: Sendable, Equatable {
        case signing(SignerError)
        case rejectedByNode(code: Int, message: String)
        case nodeUnavailable(String)
    }

    private enum EntryState: Sendable, Equatable {
        case signing(attempt: Int)
        case signed(SignedTransaction, attempt: Int)
        case submitting(SignedTransaction)
    }

    private struct Entry: Sendable, Equatable {
        let id: RequestID
        var transaction: Transaction  // nonce is the entry's nonce
        var state: EntryState
        var nonce: UInt64 { transaction.nonce }
    }

    /// The next nonce to assign; `nil` until the first sync.
    public private(set) var next: UInt64?
    /// Entries in nonce order: consecutive nonces starting at the lowest unsubmitted one.
    private var entries: [Entry] = []
    /// Requests waiting for the first sync (or a resync) before they can get a nonce.
    private var waiting: [(id: RequestID, transaction: Transaction)] = []
    private var syncing = false
    private var resignAllOnSync = false
    private var attemptCounter = 0

    public init(next: UInt64? = nil) {
        self.next = next
    }

    public var pendingCount: Int { entries.count + waiting.count }

    // MARK: Events

    /// A new request from a client. Its `nonce` field is ignored: the lane assigns it.
    public mutating func enqueue(_ id: RequestID, _ transaction: Transaction) -> [Action] {
        guard let nonce = next, !syncing else {
            waiting.append((id, transaction))
            return startSync()
        }
        next = nonce + 1
        var assigned = transaction
        assigned.nonce = nonce
        let attempt = takeAttempt()
        entries.append(Entry(id: id, transaction: assigned, state: .signing(attempt: attempt)))
        return [.sign(id, assigned, attempt: attempt)]
    }

    /// The node's pending count (combined by the caller with the journal's last used nonce + 1).
    /// Every unsubmitted entry is renumbered from there, and waiting requests get their nonces.
    public mutating func synced(nonce: UInt64) -> [Action] {
        syncing = false
        var actions: [Action] = []
        let submitting = entries.first.flatMap { entry -> Entry? in
            if case .submitting = entry.state { return entry }
            return nil
        }
        // An entry still in flight to the node keeps its nonce; everything after it is renumbered.
        var cursor = max(nonce, submitting.map { $0.nonce + 1 } ?? 0)
        for index in entries.indices {
            if case .submitting = entries[index].state { continue }
            if entries[index].nonce != cursor || resignAllOnSync {
                entries[index].transaction.nonce = cursor
                let attempt = takeAttempt()
                entries[index].state = .signing(attempt: attempt)
                actions.append(.sign(entries[index].id, entries[index].transaction, attempt: attempt))
            }
            cursor += 1
        }
        next = cursor
        resignAllOnSync = false
        let queued = waiting
        waiting.removeAll()
        for request in queued { actions += enqueue(request.id, request.transaction) }
        return actions + submitReady()
    }

    /// The node could not be asked: requests still waiting for a nonce fail (nothing was signed or sent).
    public mutating func syncFailed(_ failure: LaneFailure) -> [Action] {
        syncing = false
        let queued = waiting
        waiting.removeAll()
        var actions = queued.map { Action.failed($0.id, failure) }
        if resignAllOnSync {
            // Entries whose nonces could not be confirmed cannot be sent safely either.
            actions += entries.map { Action.failed($0.id, failure) }
            entries.removeAll()
            next = nil
            resignAllOnSync = false
        }
        return actions
    }

    /// A signature arrived. Ignored if the entry was renumbered since (its attempt is stale).
    public mutating func signed(_ id: RequestID, attempt: Int, _ transaction: SignedTransaction) -> [Action] {
        guard let index = entries.firstIndex(where: { $0.id == id }), entries[index].state == .signing(attempt: attempt),
            transaction.transaction == entries[index].transaction
        else { return [] }
        entries[index].state = .signed(transaction, attempt: attempt)
        return submitReady()
    }

    /// Signing failed for good: the client is told; every later entry moves down one nonce and is re-signed.
    public mutating func signFailed(_ id: RequestID, attempt: Int, _ error: SignerError) -> [Action] {
        guard let index = entries.firstIndex(where: { $0.id == id }), entries[index].state == .signing(attempt: attempt)
        else { return [] }
        return [.failed(id, .signing(error))] + remove(at: index)
    }

    /// The node accepted the head entry.
    public mutating func submitted(_ id: RequestID) -> [Action] {
        guard let head = entries.first, head.id == id, case .submitting(let transaction) = head.state else { return [] }
        entries.removeFirst()
        return [.succeeded(id, transaction)] + submitReady()
    }

    /// The node refused the head entry. `nonce too low` (someone else used the nonce) resyncs and renumbers;
    /// any other refusal fails this request and closes the gap behind it.
    public mutating func submitFailed(_ id: RequestID, code: Int, message: String) -> [Action] {
        guard let head = entries.first, head.id == id, case .submitting = head.state else { return [] }
        if message.hasPrefix("nonce too low") {
            // Someone else used this nonce: every queued entry is re-signed from the node's count.
            entries[0].state = .signing(attempt: takeAttempt())
            resignAllOnSync = true
            return startSync()
        }
        return [.failed(id, .rejectedByNode(code: code, message: message))] + remove(at: 0)
    }

    /// The submission's outcome is unknown (connection lost): the same signed bytes are sent again. A node that
    /// already has them answers `already known`, which the caller reports as `submitted`.
    public mutating func submissionUnknown(_ id: RequestID) -> [Action] {
        guard let head = entries.first, head.id == id, case .submitting(let transaction) = head.state else { return [] }
        return [.submit(id, transaction)]
    }

    // MARK: Helpers

    private mutating func remove(at index: Int) -> [Action] {
        entries.remove(at: index)
        var actions: [Action] = []
        for later in index..<entries.count {
            entries[later].transaction.nonce -= 1
            let attempt = takeAttempt()
            entries[later].state = .signing(attempt: attempt)
            actions.append(.sign(entries[later].id, entries[later].transaction, attempt: attempt))
        }
        if let nonce = next { next = nonce - 1 }
        return actions + submitReady()
    }

    private mutating func startSync() -> [Action] {
        guard !syncing else { return [] }
        syncing = true
        return [.sync]
    }

    /// Sends the head if it is signed and nothing is in flight (and no resync is pending).
    private mutating func submitReady() -> [Action] {
        guard !syncing, let head = entries.first, case .signed(let transaction, _) = head.state else { return [] }
        entries[0].state = .submitting(transaction)
        return [.submit(head.id, transaction)]
    }

    private mutating func takeAttempt() -> Int {
        attemptCounter += 1
        return attemptCounter
    }
}
