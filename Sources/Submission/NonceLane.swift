import Ethereum
import JSONRPC
import Signers

/// One sending address's queue, as a value: nonces are assigned here (under the pipeline's lock, microseconds,
/// never across I/O), signatures are requested concurrently, and transactions go to the node strictly in nonce
/// order, one at a time. Transactions the node accepted stay here, by nonce, until they are mined: they can be
/// sent again (the node lost them) or replaced (stuck, sped up, cancelled).
///
/// Why one at a time: if n+1 reached the node before n's rejection was known, a rejected n would leave a gap that
/// only a replacement transaction could fill — exactly what this lane exists to prevent. Signing, the slow part with
/// remote HSMs (5–50 ms), stays concurrent within a window at the head of the queue.
///
/// Invariants (each tested in NonceLaneTests):
/// - no gap reaches the node: when n fails for good, every later unsubmitted transaction is renumbered;
/// - no nonce is used twice: nonces come from `next`, which never goes below the node's count, the journal's last
///   accepted nonce + 1, or a nonce the node may hold;
/// - bytes that may have reached a node keep their nonce until there is proof they never will be mined;
/// - a stale signature (for a nonce since renumbered) is never submitted;
/// - the lane opens only after the journal's unsettled records of its address are settled (`recovered`).
public struct NonceLane: Sendable {
    public typealias RequestID = UInt64

    public enum Action: Sendable, Equatable {
        /// Ask the node for the address's pending transaction count, then call `synced`.
        case sync
        /// Record the assignment durably, then sign `transaction` (its nonce is set); report with `token`.
        case sign(RequestID, Transaction, token: Int)
        /// Send these signed bytes; report with `submissionAnswered`.
        case submit(RequestID, SignedTransaction, token: Int)
        /// Send the same bytes again after `failures` unsuccessful tries; then call `retryDue`.
        case retrySubmit(RequestID, token: Int, failures: Int)
        /// The transaction reached the node: answer the client with its hash.
        case succeeded(RequestID, SignedTransaction)
        /// The request failed for good and nothing of it reached the node.
        case failed(RequestID, LaneFailure)
        /// The outcome stays unknown after many tries: tell the client so (with the hash); the lane keeps trying.
        case outcomeUnknown(RequestID, SignedTransaction)
        /// Send these accepted-but-unmined transactions again (the node may have lost them).
        case rebroadcast([SignedTransaction])
        /// This accepted transaction has not been mined for too long: replace it with higher fees.
        case replaceStuck(RequestID, SignedTransaction)
    }

    public enum LaneFailure: Sendable, Equatable {
        case signing(SignerError)
        case rejectedByNode(RPCError)
        case nodeUnavailable(String)
    }

    /// What the node said about the head's submission, as far as the lane cares.
    public enum Answer: Sendable, Equatable {
        case accepted
        /// Refused for good; the nonce is free.
        case rejected(RPCError)
        /// The nonce is taken by another transaction (mined, or pending in the pool): resync, never reuse it.
        case nonceTaken
        /// The node lacks earlier nonces: send the accepted ones again, then retry.
        case nonceGap
        /// No verdict (link failure, node busy); `mayHaveReachedNode` if the bytes might be at the node now.
        case noVerdict(mayHaveReachedNode: Bool)
    }

    public struct Settings: Sendable, Hashable {
        /// Entries at the head of the queue that may be signing at once; later ones are signed as the head moves.
        /// Bounds the work a failure at the head causes (every signed entry after it is re-signed).
        public var signWindow = 32
        /// Tries of the same bytes without a verdict before the client is told the outcome is unknown.
        public var submitAttemptsBeforeAnswer = 10
        /// Tries of a submission that never left the gateway before the request fails (nothing was broadcast).
        public var unsentAttemptsBeforeFailure = 10
        /// Accepted transactions are sent again every this many new heads while unmined…
        public var rebroadcastEveryBlocks: UInt64 = 3
        /// …and no more often than this: an automining node makes a block per transaction, and resending every
        /// few of those would flood it with bytes it already has.
        public var rebroadcastInterval: Duration = .seconds(12)
        /// An accepted transaction unmined for this many heads is replaced with higher fees (0: never).
        public var replaceAfterBlocks: UInt64 = 0

        public init() {}
    }

    private enum Phase: Sendable, Equatable {
        /// The journal's unsettled records of this address are being settled: no nonce may be assigned yet.
        case recovering
        /// Open, but `next` is unknown until the node is asked.
        case unsynced
        case syncing
        case open
    }

    private enum EntryState: Sendable, Equatable {
        /// Beyond the signing window: its nonce is set, its signature not yet requested.
        case unsigned
        case signing(token: Int)
        case signed(SignedTransaction)
        case submitting(SignedTransaction, token: Int)
        /// Waiting to be sent again after an answer that was no verdict.
        case retrying(SignedTransaction, token: Int)
    }

    private struct Entry: Sendable, Equatable {
        let id: RequestID
        var transaction: Transaction  // nonce is the entry's nonce
        var state: EntryState
        /// Submissions without a verdict so far.
        var failures = 0
        /// Whether some submission of these bytes may have reached a node.
        var mayHaveBroadcast = false
        var toldUnknown = false
        var nonce: UInt64 { transaction.nonce }
    }

    /// A transaction the node accepted and that is not yet mined.
    public struct Accepted: Sendable, Equatable {
        public let id: RequestID
        public var signed: SignedTransaction
        /// The head at which it was accepted (or last replaced); `nil` until the first head after it.
        var since: UInt64?
        /// When it was last sent (`nil`: by the lane's first submission, at a time the lane was not told).
        var lastSent: ContinuousClock.Instant?
        var replacing = false

        public init(id: RequestID, signed: SignedTransaction) {
            self.id = id
            self.signed = signed
        }

        init(id: RequestID, signed: SignedTransaction, since: UInt64?) {
            self.id = id
            self.signed = signed
            self.since = since
        }
    }

    public private(set) var settings: Settings
    /// The next nonce to assign; `nil` until the first sync.
    public private(set) var next: UInt64?
    private var phase: Phase
    /// Entries in nonce order: consecutive nonces starting at the lowest unsubmitted one.
    private var entries: [Entry] = []
    /// Requests waiting for a nonce (until the lane is synced).
    private var waiting: [(id: RequestID, transaction: Transaction)] = []
    /// Accepted by the node, not yet mined, by nonce.
    public private(set) var accepted: [UInt64: Accepted] = [:]
    /// After "nonce taken": the next sync must not go below this.
    private var floor: UInt64 = 0
    private var resignAllOnSync = false
    private var syncWanted = false
    private var tokenCounter = 0
    private var lastHead: UInt64?

    public init(next: UInt64? = nil, recovering: Bool = false, settings: Settings = Settings()) {
        self.next = next
        self.settings = settings
        self.phase = recovering ? .recovering : (next == nil ? .unsynced : .open)
    }

    /// Requests not yet answered: queued for a nonce, signing or being submitted (accepted ones not counted).
    public var pendingCount: Int { entries.count + waiting.count }

    public var isRecovering: Bool { phase == .recovering }
    /// Synced and accepting requests: `next` is known.
    public var isOpen: Bool { phase == .open }

    // MARK: Requests

    /// A new request from a client; the lane assigns its nonce.
    public mutating func enqueue(_ id: RequestID, _ transaction: Transaction) -> [Action] {
        guard phase == .open, let nonce = next else {
            waiting.append((id, transaction))
            return startSync()
        }
        next = nonce + 1
        var assigned = transaction
        assigned.nonce = nonce
        entries.append(Entry(id: id, transaction: assigned, state: .unsigned))
        return signWithinWindow()
    }

    /// What a caller-given nonce means here: the next one (take it as any request), one of our own accepted
    /// transactions (a replacement of it), or neither (refused, with the nonce the caller should use).
    public enum CallerNonce: Sendable, Equatable {
        case next
        case replaces(Accepted)
        case refused(expected: UInt64?)
        /// The lane is not synced yet: ask again once it is.
        case unknown
    }

    public func classify(callerNonce nonce: UInt64) -> CallerNonce {
        guard phase == .open, let next else { return .unknown }
        if nonce == next && waiting.isEmpty { return .next }
        if let existing = accepted[nonce] { return .replaces(existing) }
        return .refused(expected: next)
    }

    // MARK: Recovery and sync

    /// Someone needs `next` (a caller-given nonce is being checked): sync now, or once recovery is done.
    public mutating func requestSync() -> [Action] {
        if phase == .recovering {
            syncWanted = true
            return []
        }
        return phase == .unsynced ? startSync() : []
    }

    /// The journal's unsettled records of this address are settled; `accepted` are those the node holds.
    public mutating func recovered(accepted recoveredAccepted: [Accepted]) -> [Action] {
        guard phase == .recovering else { return [] }
        for record in recoveredAccepted { accepted[record.signed.transaction.nonce] = record }
        phase = .unsynced
        defer { syncWanted = false }
        return waiting.isEmpty && !syncWanted ? [] : startSync()
    }

    /// The lowest nonce the lane may assign after a sync, as the caller sees it: max(node's pending count, the
    /// journal's last accepted nonce + 1). Every unsubmitted entry is renumbered from there.
    public mutating func synced(nonce: UInt64) -> [Action] {
        guard phase == .syncing else { return [] }
        phase = .open
        var actions: [Action] = []
        let inFlight = entries.first.flatMap { entry -> Entry? in
            switch entry.state {
            case .submitting, .retrying: return entry
            default: return nil
            }
        }
        // An entry in flight to the node keeps its nonce, and so does every accepted one: nothing is numbered below.
        var cursor = max(nonce, floor, inFlight.map { $0.nonce + 1 } ?? 0, accepted.keys.max().map { $0 + 1 } ?? 0)
        floor = 0
        for index in entries.indices {
            switch entries[index].state {
            case .submitting, .retrying: continue
            default: break
            }
            if entries[index].nonce != cursor || resignAllOnSync {
                entries[index].transaction.nonce = cursor
                entries[index].state = .unsigned
                entries[index].mayHaveBroadcast = false
            }
            cursor += 1
        }
        next = cursor
        resignAllOnSync = false
        let queued = waiting
        waiting.removeAll()
        for request in queued { actions += enqueue(request.id, request.transaction) }
        return actions + signWithinWindow() + submitReady()
    }

    /// The node could not be asked: requests still waiting for a nonce fail (nothing was signed or sent).
    public mutating func syncFailed(_ failure: LaneFailure) -> [Action] {
        guard phase == .syncing else { return [] }
        phase = next == nil ? .unsynced : .open
        let queued = waiting
        waiting.removeAll()
        var actions = queued.map { Action.failed($0.id, failure) }
        if resignAllOnSync {
            // Entries whose nonces could not be confirmed cannot be sent safely either; none may have been sent.
            let keep = entries.filter(\.mayHaveBroadcast)
            actions += entries.filter { !$0.mayHaveBroadcast }.map { Action.failed($0.id, failure) }
            entries = keep
            if keep.isEmpty {
                next = nil
                phase = .unsynced
            }
            resignAllOnSync = false
        }
        return actions + submitReady()
    }

    // MARK: Signing

    /// A signature arrived. Ignored if the entry was renumbered since (its token is stale).
    public mutating func signed(_ id: RequestID, token: Int, _ transaction: SignedTransaction) -> [Action] {
        guard let index = entries.firstIndex(where: { $0.id == id }), entries[index].state == .signing(token: token),
            transaction.transaction == entries[index].transaction
        else { return [] }
        entries[index].state = .signed(transaction)
        return submitReady()
    }

    /// Signing failed for good: the client is told; every later entry moves down one nonce.
    public mutating func signFailed(_ id: RequestID, token: Int, _ error: SignerError) -> [Action] {
        guard let index = entries.firstIndex(where: { $0.id == id }), entries[index].state == .signing(token: token)
        else { return [] }
        return [.failed(id, .signing(error))] + remove(at: index)
    }

    // MARK: Submission

    /// The node's answer to the head's submission (`token` from `submit`).
    public mutating func submissionAnswered(_ id: RequestID, token: Int, _ answer: Answer) -> [Action] {
        guard let head = entries.first, head.id == id, case .submitting(let signed, token) = head.state else {
            return []
        }
        switch answer {
        case .accepted:
            entries.removeFirst()
            accepted[signed.transaction.nonce] = Accepted(id: id, signed: signed, since: lastHead)
            return [.succeeded(id, signed)] + signWithinWindow() + submitReady()
        case .rejected(let error) where !head.mayHaveBroadcast:
            return [.failed(id, .rejectedByNode(error))] + remove(at: 0)
        case .rejected:
            // These bytes may be at some node from an earlier try: without proof the nonce stays theirs.
            return retry(signed, mayHaveReachedNode: true)
        case .nonceTaken:
            // Another transaction has this nonce (the caller proved it is not ours): renumber from the node's count.
            floor = head.nonce + 1
            entries[0].state = .unsigned
            entries[0].mayHaveBroadcast = false
            entries[0].failures = 0
            resignAllOnSync = true
            return startSync()
        case .nonceGap:
            let resend = accepted.values.sorted { $0.signed.transaction.nonce < $1.signed.transaction.nonce }.map(
                \.signed)
            return (resend.isEmpty ? [] : [.rebroadcast(resend)])
                + retry(signed, mayHaveReachedNode: head.mayHaveBroadcast)
        case .noVerdict(let mayHaveReachedNode):
            return retry(signed, mayHaveReachedNode: mayHaveReachedNode)
        }
    }

    /// The wait before a retry is over: send the same bytes again.
    public mutating func retryDue(_ id: RequestID, token: Int) -> [Action] {
        guard let head = entries.first, head.id == id, case .retrying(let signed, token) = head.state else { return [] }
        let next = takeToken()
        entries[0].state = .submitting(signed, token: next)
        return [.submit(id, signed, token: next)]
    }

    private mutating func retry(_ signed: SignedTransaction, mayHaveReachedNode: Bool) -> [Action] {
        entries[0].failures += 1
        entries[0].mayHaveBroadcast = entries[0].mayHaveBroadcast || mayHaveReachedNode
        let head = entries[0]
        if !head.mayHaveBroadcast && head.failures >= settings.unsentAttemptsBeforeFailure {
            return [.failed(head.id, .nodeUnavailable("the node could not be reached"))] + remove(at: 0)
        }
        var actions: [Action] = []
        if head.mayHaveBroadcast && head.failures >= settings.submitAttemptsBeforeAnswer && !head.toldUnknown {
            entries[0].toldUnknown = true
            actions.append(.outcomeUnknown(head.id, signed))
        }
        let token = takeToken()
        entries[0].state = .retrying(signed, token: token)
        return actions + [.retrySubmit(head.id, token: token, failures: head.failures)]
    }

    // MARK: Accepted transactions

    /// A receipt for `nonce` was seen: it and every lower accepted nonce are settled.
    public mutating func mined(nonce: UInt64) {
        for key in accepted.keys where key <= nonce { accepted.removeValue(forKey: key) }
    }

    /// A mined transaction's block was reorged away: it is pending again.
    public mutating func unmined(_ record: Accepted) {
        accepted[record.signed.transaction.nonce] = record
    }

    /// `signed` replaced the accepted transaction at its nonce (a caller replacement, a speed-up, a stuck one).
    /// Returns the transaction it replaced.
    @discardableResult
    public mutating func replaced(by id: RequestID, _ signed: SignedTransaction) -> Accepted? {
        let nonce = signed.transaction.nonce
        let old = accepted[nonce]
        accepted[nonce] = Accepted(id: id, signed: signed, since: lastHead)
        return old
    }

    /// A replacement attempt ended without replacing: the stuck transaction may be tried again later.
    public mutating func replacementAbandoned(nonce: UInt64) {
        accepted[nonce]?.replacing = false
        accepted[nonce]?.since = lastHead
    }

    /// A new head (seen at `now`): accepted transactions are sent again every few blocks (and at most every
    /// `rebroadcastInterval`) and replaced once stuck.
    public mutating func newHead(_ number: UInt64, now: ContinuousClock.Instant) -> [Action] {
        lastHead = number
        var resend: [SignedTransaction] = []
        var actions: [Action] = []
        for nonce in accepted.keys.sorted() {
            guard let record = accepted[nonce] else { continue }
            guard let since = record.since, let lastSent = record.lastSent else {
                if record.since == nil { accepted[nonce]?.since = number }
                accepted[nonce]?.lastSent = record.lastSent ?? now
                continue
            }
            let age = number >= since ? number - since : 0
            if settings.replaceAfterBlocks > 0 && age >= settings.replaceAfterBlocks && !record.replacing {
                accepted[nonce]?.replacing = true
                actions.append(.replaceStuck(record.id, record.signed))
            } else if settings.rebroadcastEveryBlocks > 0 && age >= settings.rebroadcastEveryBlocks
                && now - lastSent >= settings.rebroadcastInterval
            {
                accepted[nonce]?.lastSent = now
                resend.append(record.signed)
            }
        }
        return (resend.isEmpty ? [] : [.rebroadcast(resend)]) + actions
    }

    /// The node link is back: everything accepted is sent again (a restarted node may have lost its pool).
    public func reconnected() -> [Action] {
        let resend = accepted.values.sorted { $0.signed.transaction.nonce < $1.signed.transaction.nonce }.map(\.signed)
        return resend.isEmpty ? [] : [.rebroadcast(resend)]
    }

    // MARK: Helpers

    private mutating func remove(at index: Int) -> [Action] {
        entries.remove(at: index)
        for later in index..<entries.count {
            entries[later].transaction.nonce -= 1
            entries[later].state = .unsigned
        }
        if let nonce = next { next = nonce - 1 }
        return signWithinWindow() + submitReady()
    }

    /// Requests signatures for unsigned entries inside the window at the head of the queue.
    private mutating func signWithinWindow() -> [Action] {
        var actions: [Action] = []
        for index in entries.indices.prefix(settings.signWindow) where entries[index].state == .unsigned {
            let token = takeToken()
            entries[index].state = .signing(token: token)
            actions.append(.sign(entries[index].id, entries[index].transaction, token: token))
        }
        return actions
    }

    private mutating func startSync() -> [Action] {
        guard phase == .unsynced || phase == .open else { return [] }
        phase = .syncing
        return [.sync]
    }

    /// Sends the head if it is signed and nothing is in flight (and no resync is pending).
    private mutating func submitReady() -> [Action] {
        guard phase == .open, let head = entries.first, case .signed(let transaction) = head.state else { return [] }
        let token = takeToken()
        entries[0].state = .submitting(transaction, token: token)
        return [.submit(head.id, transaction, token: token)]
    }

    private mutating func takeToken() -> Int {
        tokenCounter += 1
        return tokenCounter
    }
}
