import Ethereum
import JSON
import JSONRPC
import Logging
import Node
import ServiceLifecycle
import Synchronization

/// What the tracker reports about a tracked transaction.
public enum ReceiptEvent: Sendable {
    /// A receipt was found (again, with a different block after a reorg).
    case mined(hash: Bytes32, receipt: JSONValue, blockNumber: UInt64, connectionID: UInt64?)
    /// The receipt's block is `confirmations` deep (1 = the block itself is the head).
    case confirmed(hash: Bytes32, confirmations: UInt64, blockNumber: UInt64)
    /// The block that held the receipt was replaced and the transaction is pending again.
    case reorged(hash: Bytes32)
}

/// Watches new heads and finds the receipts of the transactions it tracks: one `eth_getBlockReceipts` per new
/// block (not one call per transaction), a per-hash fallback for anything pending too long, and confirmations
/// counted up to `confirmationDepth` while the receipt's block is canonical. Each head is linked to the known chain
/// by `CanonicalChain` (walking back to the fork point after a reorg of any depth, filling gaps), and every receipt
/// in an orphaned block is looked up again: found elsewhere it is reported mined again, gone it is `reorged`.
/// Heads are processed one at a time in the order they arrive (`run` is the single consumer).
public final class ReceiptTracker: Service, Sendable {
    public struct Settings: Sendable, Hashable {
        /// A transaction is tracked until its receipt is this many blocks deep.
        public var confirmationDepth: UInt64 = 12
        /// Blocks looked back with eth_getBlockReceipts after a gap in the heads (e.g. a reconnect).
        public var maximumCatchUpBlocks: UInt64 = 32
        /// Heads after which a still-pending transaction is also looked up by hash.
        public var perHashLookupAfterHeads = 3
        /// Heads after which a hash that was not sent through the gateway and never landed is forgotten.
        public var forgetForeignAfterHeads = 256
        /// With no new head for this long (an automining node goes quiet when sends stop), pending transactions are
        /// looked up by hash anyway: a receipt whose block was skipped must not wait for the next transaction.
        public var idleLookupInterval: Duration = .seconds(2)

        public init() {}
    }

    private struct Tracked: Sendable {
        var connectionID: UInt64?
        var blockNumber: UInt64?
        var blockHash: String?
        var receipt: JSONValue?
        var reportedConfirmations: UInt64 = 0
        var headsPending = 0
    }

    private struct State: Sendable {
        var tracked: [Bytes32: Tracked] = [:]
        var lastHead: UInt64?
        var chain = CanonicalChain(depth: 128, maximumGapWalk: 4)
        /// Receipts of the last few blocks: a transaction tracked just after its block was scanned (automining nodes
        /// announce the block before answering eth_sendRawTransaction) is found here instead of being missed.
        var recentReceipts: [Bytes32: (receipt: JSONValue, block: UInt64)] = [:]
    }

    public struct Head: Sendable, Hashable {
        public let number: UInt64
        public let hash: String
        public let parentHash: String

        public init?(json: JSONValue) {
            guard let numberText = json["number"]?.stringValue, let number = try? Hex.decodeQuantity(numberText),
                let hash = json["hash"]?.stringValue, let parentHash = json["parentHash"]?.stringValue
            else { return nil }
            self.number = number
            self.hash = hash
            self.parentHash = parentHash
        }

        public init(number: UInt64, hash: String, parentHash: String) {
            self.number = number
            self.hash = hash
            self.parentHash = parentHash
        }

        var block: CanonicalChain.Block { .init(number: number, hash: hash, parentHash: parentHash) }
    }

    private let node: any NodeClient
    private let settings: Settings
    private let logger: Logger
    private let state = Mutex(State())
    private enum Input: Sendable {
        case head(Head)
        /// The idle timer: no head for `idleLookupInterval`.
        case idle
        /// Hashes to look up at once (a subscription named them; they may be mined already).
        case lookUp([Bytes32])
    }

    private let inputs: AsyncStream<Input>
    private let input: AsyncStream<Input>.Continuation
    private let lastActivity = Mutex(ContinuousClock.now)
    /// The closure is kept inside a struct: a bare closure in a `Mutex` is reabstracted on every `withLock` read and
    /// stored back wrapped in two more thunks, so each event went through a chain as long as all events before it
    /// (measured: half the gateway's CPU after a few thousand sends, loadtest/pipeline-benchmark.sh).
    private struct EventHandler: Sendable {
        let handle: @Sendable (ReceiptEvent) -> Void
    }
    private let handler = Mutex<EventHandler?>(nil)

    public init(node: any NodeClient, settings: Settings = Settings(), logger: Logger) {
        self.node = node
        self.settings = settings
        self.logger = logger
        (inputs, input) = AsyncStream.makeStream(of: Input.self, bufferingPolicy: .bufferingNewest(256))
    }

    public func setEventHandler(_ handler: @escaping @Sendable (ReceiptEvent) -> Void) {
        self.handler.withLock { $0 = EventHandler(handle: handler) }
    }

    /// Starts tracking `hash` (sent through the gateway, or named by a `transactionReceipts` subscription).
    public func track(_ hash: Bytes32, connectionID: UInt64?) {
        let recent = state.withLock { state -> (receipt: JSONValue, block: UInt64)? in
            if state.tracked[hash] == nil { state.tracked[hash] = Tracked(connectionID: connectionID) }
            return state.recentReceipts[hash]
        }
        if let recent { found(recent.receipt, hash: hash, headNumber: state.withLock { $0.lastHead }) }
    }

    public var trackedCount: Int { state.withLock { $0.tracked.count } }

    /// `replacement` took the nonce of `replaced`: it is tracked for the same connection.
    public func replaced(_ replaced: Bytes32, by replacement: Bytes32) {
        let connectionID = state.withLock { $0.tracked[replaced]?.connectionID }
        track(replacement, connectionID: connectionID)
    }

    /// Stops tracking hashes that can no longer be mined (their nonce was settled by another transaction).
    public func forget(_ hashes: [Bytes32]) {
        state.withLock { state in
            for hash in hashes where state.tracked[hash]?.blockNumber == nil {
                state.tracked.removeValue(forKey: hash)
            }
        }
    }

    /// The receipt already found for `hash`, with its block number and the confirmations reported so far.
    public func knownReceipt(_ hash: Bytes32) -> (receipt: JSONValue, blockNumber: UInt64, confirmations: UInt64)? {
        state.withLock { state in
            guard let tracked = state.tracked[hash], let receipt = tracked.receipt, let block = tracked.blockNumber
            else {
                return nil
            }
            return (receipt, block, tracked.reportedConfirmations)
        }
    }

    /// A new head from the node (the `newHeads` subscription the gateway shares with its clients).
    public func newHead(_ head: Head) {
        input.yield(.head(head))
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask {
                    while (try? await Task.sleep(for: self.settings.idleLookupInterval)) != nil {
                        if ContinuousClock.now - self.lastActivity.withLock({ $0 }) >= self.settings.idleLookupInterval
                        {
                            self.input.yield(.idle)
                        }
                    }
                }
                for await item in self.inputs {
                    self.lastActivity.withLock { $0 = .now }
                    switch item {
                    case .head(let head): await self.process(head)
                    case .idle: await self.lookUpLongPending(idle: true)
                    case .lookUp(let hashes): for hash in hashes { await self.lookUpNow(hash) }
                    }
                }
                group.cancelAll()
            }
        }
    }

    /// Looks these hashes up soon, one at a time, in the tracker's own order of work.
    public func lookUp(_ hashes: [Bytes32]) {
        input.yield(.lookUp(hashes))
    }

    /// Looks a hash up once right away (a subscription may name a transaction that is already mined).
    public func lookUpNow(_ hash: Bytes32) async {
        guard
            case .success(let receipt) = await node.call(
                method: "eth_getTransactionReceipt", params: [.string(hash.hex)]),
            !receipt.isNull
        else { return }
        found(receipt, hash: hash, headNumber: nil)
    }

    // MARK: Processing

    private func process(_ head: Head) async {
        var segment = [head.block]
        var connected: (newBlocks: [CanonicalChain.Block], orphanedFrom: UInt64?)?
        while connected == nil {
            switch state.withLock({ $0.chain.connect(segment) }) {
            case .connected(let newBlocks, let orphanedFrom):
                connected = (newBlocks, orphanedFrom)
            case .needBlock(let hash, let number):
                // Walk back through parents until the new chain meets the known one.
                let fetched = await node.call(method: "eth_getBlockByHash", params: [.string(hash), false])
                guard case .success(let json) = fetched, let parent = Head(json: json), parent.number == number else {
                    logger.debug(
                        "cannot fetch a parent block; the next head tries again",
                        metadata: ["block.hash": "\(hash)"])
                    return
                }
                segment.append(parent.block)
            }
        }
        guard let (newBlocks, orphanedFrom) = connected, let newest = newBlocks.last else { return }
        // Every block from the previous tip (or the fork point) up to the head is new, also those a gap skipped
        // without linking: scanned by number, the most recent `maximumCatchUpBlocks` of them.
        let previousTip = state.withLock { state -> UInt64? in
            defer { state.lastHead = state.chain.tip }
            return state.lastHead
        }
        var first = newBlocks.first!.number
        if let previousTip, orphanedFrom == nil, previousTip + 1 < first { first = previousTip + 1 }
        if newest.number - first + 1 > settings.maximumCatchUpBlocks {
            first = newest.number - settings.maximumCatchUpBlocks + 1
        }
        if let orphanedFrom { await handleReorg(from: orphanedFrom) }
        for number in first...newest.number { await scanBlock(number) }
        await lookUpLongPending()
        if let tip = state.withLock({ $0.chain.tip }) { reportConfirmations(headNumber: tip) }
    }

    private func scanBlock(_ number: UInt64) async {
        let result = await node.call(method: "eth_getBlockReceipts", params: [.string(Hex.encodeQuantity(number))])
        guard case .success(let receipts) = result, let list = receipts.arrayValue else { return }
        let matches = state.withLock { state -> [(Bytes32, JSONValue)] in
            state.recentReceipts = state.recentReceipts.filter { $0.value.block + 8 > number }
            var matches: [(Bytes32, JSONValue)] = []
            for receipt in list {
                guard let text = receipt["transactionHash"]?.stringValue, let hash = try? Bytes32(hex: text) else {
                    continue
                }
                state.recentReceipts[hash] = (receipt, number)
                if state.tracked[hash] != nil { matches.append((hash, receipt)) }
            }
            return matches
        }
        for (hash, receipt) in matches { found(receipt, hash: hash, headNumber: number) }
    }

    private func lookUpLongPending(idle: Bool = false) async {
        let stale = state.withLock { state -> [Bytes32] in
            var stale: [Bytes32] = []
            var forgotten: [Bytes32] = []
            var waiting: [Bytes32] = []
            // Collected, then applied: a change while iterating `tracked` copies all of it (see reportConfirmations).
            for (hash, tracked) in state.tracked where tracked.blockNumber == nil {
                // Hashes named by a subscriber (not sent by us) that never land are forgotten: a client must not be
                // able to make the tracker grow without bound.
                if tracked.connectionID == nil && tracked.headsPending >= settings.forgetForeignAfterHeads {
                    forgotten.append(hash)
                    continue
                }
                if idle {
                    stale.append(hash)
                    continue
                }
                waiting.append(hash)
                if tracked.headsPending + 1 >= settings.perHashLookupAfterHeads { stale.append(hash) }
            }
            for hash in forgotten { state.tracked.removeValue(forKey: hash) }
            for hash in waiting { state.tracked[hash]?.headsPending += 1 }
            return Array(stale.prefix(100))
        }
        for hash in stale { await lookUpNow(hash) }
    }

    private func handleReorg(from number: UInt64) async {
        let affected = state.withLock { state in
            state.recentReceipts = state.recentReceipts.filter { $0.value.block < number }
            return state.tracked.filter { ($0.value.blockNumber ?? 0) >= number && $0.value.blockNumber != nil }.map(
                \.key)
        }
        guard !affected.isEmpty else { return }
        logger.notice(
            "reorg: looking receipts up again",
            metadata: ["block.number": "\(number)", "tx.count": "\(affected.count)"])
        for hash in affected {
            let result = await node.call(method: "eth_getTransactionReceipt", params: [.string(hash.hex)])
            if case .success(let receipt) = result, !receipt.isNull {
                found(receipt, hash: hash, headNumber: nil)
            } else {
                state.withLock { state in
                    state.tracked[hash]?.blockNumber = nil
                    state.tracked[hash]?.blockHash = nil
                    state.tracked[hash]?.reportedConfirmations = 0
                }
                emit(.reorged(hash: hash))
            }
        }
    }

    /// Records a receipt; reports it unless it is the same block we already reported.
    private func found(_ receipt: JSONValue, hash: Bytes32, headNumber: UInt64?) {
        guard let numberText = receipt["blockNumber"]?.stringValue,
            let blockNumber = try? Hex.decodeQuantity(numberText)
        else { return }
        let blockHash = receipt["blockHash"]?.stringValue
        let connectionID = state.withLock { state -> UInt64?? in
            guard let tracked = state.tracked[hash], tracked.blockHash != blockHash else { return .none }
            state.tracked[hash]?.blockNumber = blockNumber
            state.tracked[hash]?.blockHash = blockHash
            state.tracked[hash]?.receipt = receipt
            state.tracked[hash]?.reportedConfirmations = 0
            return .some(tracked.connectionID)
        }
        guard case .some(let sender) = connectionID else { return }
        emit(.mined(hash: hash, receipt: receipt, blockNumber: blockNumber, connectionID: sender))
        if let headNumber { reportConfirmations(headNumber: headNumber) }
    }

    private func reportConfirmations(headNumber: UInt64) {
        let events = state.withLock { state -> [ReceiptEvent] in
            var events: [ReceiptEvent] = []
            // Changes are collected and applied after the loop: mutating `tracked` while iterating it copied the
            // whole dictionary (every receipt in it) on each change, O(n²) per head; the measured cause of 5 ms of
            // CPU per transaction with a few thousand in flight (loadtest/pipeline-benchmark.sh).
            var deepened: [(Bytes32, UInt64)] = []
            var settled: [Bytes32] = []
            for (hash, tracked) in state.tracked {
                guard let blockNumber = tracked.blockNumber, headNumber >= blockNumber else { continue }
                // Only a receipt in a canonical block gains confirmations (an unknown, older block counts as such).
                if let canonical = state.chain.hash(at: blockNumber), canonical != tracked.blockHash { continue }
                let depth = min(headNumber - blockNumber + 1, settings.confirmationDepth)
                if depth > tracked.reportedConfirmations {
                    for confirmations in (tracked.reportedConfirmations + 1)...depth {
                        events.append(.confirmed(hash: hash, confirmations: confirmations, blockNumber: blockNumber))
                    }
                    deepened.append((hash, depth))
                }
                if depth >= settings.confirmationDepth { settled.append(hash) }
            }
            for (hash, depth) in deepened { state.tracked[hash]?.reportedConfirmations = depth }
            for hash in settled { state.tracked.removeValue(forKey: hash) }
            return events
        }
        for event in events { emit(event) }
    }

    private func emit(_ event: ReceiptEvent) {
        handler.withLock { $0 }?.handle(event)
    }
}
