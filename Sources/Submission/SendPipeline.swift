import Ethereum
import JSON
import JSONRPC
import Logging
import Node
import ServiceLifecycle
import Signers
import Synchronization

/// `eth_sendTransaction` end to end: validate, fill, assign the nonce in the address's lane, journal, sign
/// (concurrently), submit in nonce order, journal, answer with the hash; then keep every accepted transaction alive
/// until it is mined (sent again when a node may have lost it, replaced when stuck).
///
/// The lanes are values (`NonceLane`) kept under one lock that is held for microseconds and never across I/O. This
/// `Service` carries out the actions they return, in the order they were returned, as children of its own task
/// group: nothing outlives `run`.
///
/// What a client is told: a hash once the node accepted the transaction; -32603 only when nothing was broadcast;
/// -32000 "outcome unknown" (with the hash) when bytes may have reached a node without a verdict; the node's own
/// verdict when it refused the transaction for good (with its -32603 turned into -32000).
public final class SendPipeline: Service, Sendable {
    public struct Settings: Sendable, Hashable {
        /// Attempts for a signature when the backend is unavailable (throttled HSM, network, timeout).
        public var signAttempts = 3
        /// Requests one address may have queued (not yet accepted by the node); more are refused with -32005.
        public var maximumQueuedPerAddress = 1_024
        /// Waits between retries of node calls and signatures.
        public var retryBackoff = Backoff(initial: .milliseconds(200), maximum: .seconds(5))
        /// How a stuck transaction's fees are raised (at least geth's 10 %).
        public var replacementBumpPercent: UInt64 = 20
        /// The highest maxFeePerGas (or gasPrice) a replacement may pay; `nil`: no cap.
        public var maximumFeePerGas: UInt256?
        public var lane = NonceLane.Settings()

        public init() {}
    }

    public typealias Completion = @Sendable (Result<SignedTransaction, RPCError>) -> Void
    /// Decides on the filled transaction before a nonce is assigned (access policies): an error refuses it.
    public typealias Approval = @Sendable (Transaction) -> RPCError?

    /// What the rest of the gateway hears from the pipeline.
    public struct Observers: Sendable {
        /// A transaction reached the node (hash, sender, connection it came from): track its receipt.
        public var submitted: @Sendable (SignedTransaction, _ connectionID: UInt64?) -> Void = { _, _ in }
        /// `replacement` took the nonce of the transaction with hash `replaced`: track both, tell the watchers.
        public var replaced: @Sendable (_ replaced: Bytes32, _ replacement: SignedTransaction) -> Void = { _, _ in }
        /// These hashes can no longer be mined (another transaction settled their nonce): stop tracking them.
        public var settled: @Sendable ([Bytes32]) -> Void = { _ in }
        public init() {}
    }

    private struct Pending: Sendable {
        let from: Address
        let connectionID: UInt64?
        let idempotencyKey: String?
        let requestDigest: Bytes32?
        var completions: [Completion]
    }

    /// One request as it enters the pipeline.
    private struct Request: Sendable {
        let transaction: TransactionRequest
        let idempotencyKey: String?
        let connectionID: UInt64?
        let approve: Approval?
        let completion: Completion
    }

    private enum Work: Sendable {
        case start(Request)
        case lane(Address, [NonceLane.Action])
        case recover(Address, [JournalRecord])
        case slow(Address, NonceLane.Action)
        case reorged(Bytes32)
        case mined(Bytes32, UInt64)
        case replaceByHash(Bytes32, ReplacementKind, Completion)
    }

    private struct State: Sendable {
        var lanes: [Address: NonceLane] = [:]
        var pending: [UInt64: Pending] = [:]
        var keys = IdempotencyKeys()
        var nextID: UInt64 = 1
        /// Raw bytes already journaled as `signed`, by request: a retry of the same bytes does not write again.
        var journaledHash: [UInt64: Bytes32] = [:]
        /// Every hash the node accepted from a lane and that is not yet settled: sender and nonce.
        var acceptedHashes: [Bytes32: (from: Address, nonce: UInt64)] = [:]
        /// Callers of a caller-nonce request waiting for their lane's first sync.
        var syncWaiters: [Address: [CheckedContinuation<Void, Never>]] = [:]
    }

    private let wallet: Wallet
    private let node: any NodeClient
    private let filler: TransactionFiller
    private let journal: any Journal
    private let settings: Settings
    private let logger: Logger
    private let observers: Observers
    private let state = Mutex(State())
    private let work: AsyncStream<Work>
    private let workInput: AsyncStream<Work>.Continuation

    public init(
        wallet: Wallet, node: any NodeClient, filler: TransactionFiller, journal: any Journal,
        settings: Settings = Settings(), observers: Observers = Observers(), logger: Logger
    ) {
        self.wallet = wallet
        self.node = node
        self.filler = filler
        self.journal = journal
        self.settings = settings
        self.observers = observers
        self.logger = logger
        (work, workInput) = AsyncStream.makeStream(of: Work.self)
    }

    // MARK: Service

    /// Prepares from the journal (ids continue after its own; each address with unsettled records recovers before
    /// its lane opens), then carries out work until shutdown. Requests that arrive earlier wait in the stream.
    public func run() async throws {
        let unsettled = try await prepare()
        await withDiscardingTaskGroup { group in
            for (address, records) in unsettled { workInput.yield(.recover(address, records)) }
            await withGracefulShutdownHandler {
                for await item in work {
                    group.addTask { await self.carryOut(item) }
                }
            } onGracefulShutdown: {
                self.workInput.finish()
            }
            group.cancelAll()
        }
        // Whatever is still unanswered is in the journal and resumes at the next start; nothing here claims more.
        let left = state.withLock { state in
            defer { state.pending.removeAll() }
            return state.pending.values.flatMap(\.completions)
        }
        for completion in left {
            completion(
                .failure(
                    .server(
                        "the gateway stopped before this transaction's outcome was known; "
                            + "it is journaled and is resubmitted when the gateway starts again")))
        }
    }

    private func prepare() async throws -> [Address: [JournalRecord]] {
        let maximum = try await journal.maximumID()
        let abandoned = try await journal.abandonUnsigned()
        let unsettled = Dictionary(grouping: try await journal.unsettled(), by: \.from)
        state.withLock { state in
            state.nextID = max(state.nextID, maximum + 1)
            for address in unsettled.keys {
                state.lanes[address] = NonceLane(recovering: true, settings: settings.lane)
            }
        }
        if abandoned > 0 {
            logger.notice(
                "journal: assignments that never got a signature were abandoned",
                metadata: ["journal.count": "\(abandoned)"])
        }
        return unsettled
    }

    private func carryOut(_ item: Work) async {
        switch item {
        case .start(let request): await start(request)
        case .lane(let from, let actions): await perform(actions, from: from)
        case .recover(let from, let records): await recover(from, records)
        case .slow(let from, let action): await carryOutSlow(action, from: from)
        case .reorged(let hash): await reorged(hash)
        case .replaceByHash(let hash, let kind, let completion):
            completion(await replace(hash: hash, kind))
        case .mined(let hash, let blockNumber):
            do { try await journal.mined(hash: hash, blockNumber: blockNumber) } catch {
                logger.error(
                    "journal could not record a receipt", metadata: ["tx.hash": "\(hash)", "error": "\(error)"])
            }
        }
    }

    // MARK: Sending

    public func send(
        _ request: TransactionRequest, idempotencyKey: String? = nil, connectionID: UInt64? = nil,
        approve: Approval? = nil
    ) async
        -> Result<SignedTransaction, RPCError>
    {
        await withCheckedContinuation { continuation in
            send(request, idempotencyKey: idempotencyKey, connectionID: connectionID, approve: approve) {
                continuation.resume(returning: $0)
            }
        }
    }

    public func send(
        _ request: TransactionRequest, idempotencyKey: String? = nil, connectionID: UInt64? = nil,
        approve: Approval? = nil, completion: @escaping Completion
    ) {
        // Before the wallet's first refresh the account list is empty: the check waits for it (in `start`).
        guard wallet.account(for: request.from) != nil || !wallet.hasRefreshed else {
            return completion(.failure(Self.notAnAccount(request.from)))
        }
        if let refusal = queueRefusal(request.from) { return completion(.failure(refusal)) }
        let request = Request(
            transaction: request, idempotencyKey: idempotencyKey, connectionID: connectionID, approve: approve,
            completion: completion)
        if case .terminated = workInput.yield(.start(request)) {
            completion(.failure(.internalError("the gateway is shutting down; nothing was sent")))
        }
    }

    static func notAnAccount(_ from: Address) -> RPCError {
        .unauthorized("from address \(from.checksummed) is not an account of this gateway")
    }

    private func queueRefusal(_ from: Address) -> RPCError? {
        let queued = state.withLock { $0.lanes[from]?.pendingCount ?? 0 }
        guard queued >= settings.maximumQueuedPerAddress else { return nil }
        return .limitExceeded(
            "too many transactions queued for \(from.checksummed) (\(queued), the limit is "
                + "send.maxQueuedPerAddress); nothing was sent: retry once earlier ones are accepted")
    }

    private func start(_ request: Request) async {
        if !wallet.hasRefreshed {
            await wallet.waitUntilRefreshed()
            guard wallet.account(for: request.transaction.from) != nil else {
                return request.completion(.failure(Self.notAnAccount(request.transaction.from)))
            }
        }
        let digest = request.idempotencyKey.map { _ in request.transaction.digest }
        // The id and the idempotency key are taken atomically: a concurrent repeat of the same request joins this
        // one instead of racing it; the same key with a different request is refused.
        let claim = state.withLock { state -> (id: UInt64, outcome: IdempotencyKeys.Claim) in
            let id = state.nextID
            if let key = request.idempotencyKey, let digest {
                let outcome = state.keys.claim(key, digest: digest, id: id)
                switch outcome {
                case .joined(let existing):
                    state.pending[existing]?.completions.append(request.completion)
                    return (existing, outcome)
                case .conflict:
                    return (id, outcome)
                case .claimed:
                    break
                }
            }
            state.nextID += 1
            state.pending[id] = Pending(
                from: request.transaction.from, connectionID: request.connectionID,
                idempotencyKey: request.idempotencyKey,
                requestDigest: digest, completions: [request.completion])
            return (id, .claimed)
        }
        switch claim.outcome {
        case .joined: return
        case .conflict: return request.completion(.failure(Self.keyConflict(request.idempotencyKey)))
        case .claimed: break
        }
        let id = claim.id
        if let key = request.idempotencyKey {
            do {
                if let record = try await journal.record(idempotencyKey: key) {
                    guard record.requestDigest == nil || record.requestDigest == digest else {
                        return finish(id, .failure(Self.keyConflict(key)))
                    }
                    return finish(id, Self.result(of: record))
                }
            } catch {
                return finish(id, .failure(.internalError("journal unavailable, nothing was sent: \(error)")))
            }
        }
        let transaction: Transaction
        do throws(RPCError) {
            transaction = try await filler.fill(request.transaction)
        } catch {
            return finish(id, .failure(error))
        }
        // Before the lane: a refused transaction takes no nonce and leaves no journal record.
        if let denial = request.approve?(transaction) { return finish(id, .failure(denial)) }
        let from = request.transaction.from
        if let callerNonce = request.transaction.nonce {
            return await sendWithCallerNonce(
                id, transaction, nonce: callerNonce, from: from, connectionID: request.connectionID)
        }
        let actions = state.withLock { state -> [NonceLane.Action]? in
            guard (state.lanes[from]?.pendingCount ?? 0) < settings.maximumQueuedPerAddress else { return nil }
            return state.lanes[from, default: NonceLane(settings: settings.lane)].enqueue(id, transaction)
        }
        guard let actions else { return finish(id, .failure(queueRefusal(from) ?? .limitExceeded("queue full"))) }
        await perform(actions, from: from)
    }

    private static func keyConflict(_ key: String?) -> RPCError {
        .invalidParams(
            "idempotencyKey \"\(key ?? "")\" was already used for a different transaction; "
                + "nothing was sent")
    }

    /// A caller-given nonce is a request to the lane: the next nonce is taken like any other request; the nonce of
    /// one of the gateway's own pending transactions replaces it (fees must beat it); anything else is refused
    /// without a trace in the journal.
    private func sendWithCallerNonce(
        _ id: UInt64, _ transaction: Transaction, nonce: UInt64, from: Address,
        connectionID: UInt64?
    ) async {
        for _ in 0..<3 {
            let decision = state.withLock { state -> (NonceLane.CallerNonce, [NonceLane.Action]) in
                var lane = state.lanes[from, default: NonceLane(settings: settings.lane)]
                defer { state.lanes[from] = lane }
                let verdict = lane.classify(callerNonce: nonce)
                switch verdict {
                case .next:
                    guard lane.pendingCount < settings.maximumQueuedPerAddress else { return (verdict, []) }
                    return (verdict, lane.enqueue(id, transaction))
                case .unknown:
                    return (verdict, lane.requestSync())
                case .replaces, .refused:
                    return (verdict, [])
                }
            }
            switch decision.0 {
            case .next:
                if decision.1.isEmpty {
                    return finish(id, .failure(queueRefusal(from) ?? .limitExceeded("queue full")))
                }
                return await perform(decision.1, from: from)
            case .unknown:
                for action in decision.1 { workInput.yield(.slow(from, action)) }
                await withCheckedContinuation { continuation in
                    let openAlready = state.withLock { state -> Bool in
                        if state.lanes[from]?.isOpen == true { return true }
                        state.syncWaiters[from, default: []].append(continuation)
                        return false
                    }
                    if openAlready { continuation.resume() }
                }
            case .replaces(let old):
                guard FeeBump.beats(transaction.fees, old.signed.transaction.fees) else {
                    let minimum = FeeBump.minimum(over: old.signed.transaction.fees)
                    return finish(
                        id,
                        .failure(
                            .server(
                                "replacement transaction underpriced: nonce \(nonce) is taken by the gateway's pending "
                                    + "transaction \(old.signed.hash.hex); a replacement must pay at least "
                                    + "\(Self.describe(minimum)) (+\(FeeBump.minimumPercent) %)")))
                }
                return finish(id, await replace(old, with: transaction, from: from, id: id, connectionID: connectionID))
            case .refused(let expected):
                return finish(
                    id,
                    .failure(
                        .server(
                            "nonce \(nonce) cannot be used for \(from.checksummed): the next nonce is "
                                + "\(expected.map(String.init) ?? "unknown"); "
                                + "a lower nonce may only replace one of the gateway's own pending transactions")))
            }
        }
        finish(id, .failure(.internalError("cannot read the account's nonce from the node; nothing was sent")))
    }

    private static func describe(_ fees: Fees) -> String {
        switch fees {
        case .gasPrice(let price): "gasPrice \(price)"
        case .dynamic(let tip, let cap): "maxFeePerGas \(cap) and maxPriorityFeePerGas \(tip)"
        }
    }

    // MARK: Speed-up and cancel (what wallets offer)

    public enum ReplacementKind: Sendable {
        /// The same transaction with higher fees.
        case speedUp
        /// A 0-value transfer to itself with higher fees: the original can then never be mined.
        case cancel
    }

    /// `replace(hash:_:)` as a work item of the pipeline: `completion` gets the replacement.
    public func replace(hash: Bytes32, _ kind: ReplacementKind, completion: @escaping Completion) {
        if case .terminated = workInput.yield(.replaceByHash(hash, kind, completion)) {
            completion(.failure(.internalError("the gateway is shutting down; nothing was sent")))
        }
    }

    /// Replaces the gateway's pending transaction `hash` at its nonce with bumped fees.
    public func replace(hash: Bytes32, _ kind: ReplacementKind) async -> Result<SignedTransaction, RPCError> {
        let found = state.withLock { state -> (Address, NonceLane.Accepted)? in
            guard let (from, nonce) = state.acceptedHashes[hash], let accepted = state.lanes[from]?.accepted[nonce],
                accepted.signed.hash == hash
            else { return nil }
            return (from, accepted)
        }
        guard let (from, old) = found else {
            return .failure(
                .server(
                    "transaction \(hash.hex) is not a pending transaction of this gateway "
                        + "(unknown, already mined, or replaced)"))
        }
        guard let transaction = await bumpedTransaction(old.signed.transaction, kind, from: from) else {
            return .failure(.server("cannot raise the fees of \(hash.hex) enough within send.maxFeePerGas"))
        }
        let id = state.withLock { state in
            defer { state.nextID += 1 }
            return state.nextID
        }
        return await replace(old, with: transaction, from: from, id: id, connectionID: nil)
    }

    private func bumpedTransaction(_ old: Transaction, _ kind: ReplacementKind, from: Address) async -> Transaction? {
        let suggested = try? await filler.suggestedFees(for: old.type)
        guard
            let fees = FeeBump.bumped(
                old.fees, percent: settings.replacementBumpPercent, suggested: suggested,
                cap: settings.maximumFeePerGas)
        else { return nil }
        switch kind {
        case .speedUp:
            return try? Transaction(
                type: old.type, chainId: old.chainId, nonce: old.nonce, fees: fees, gas: old.gas,
                to: old.to, value: old.value, data: old.data, accessList: old.accessList)
        case .cancel:
            return try? Transaction(
                type: old.type, chainId: old.chainId, nonce: old.nonce, fees: fees, gas: 21_000,
                to: from, value: .zero, data: [])
        }
    }

    /// Signs and sends `transaction` at `old`'s nonce. Accepted: both hashes are tracked, whichever is mined
    /// settles the nonce, and the watchers of the old one are told.
    private func replace(
        _ old: NonceLane.Accepted, with transaction: Transaction, from: Address, id: UInt64,
        connectionID: UInt64?
    ) async -> Result<SignedTransaction, RPCError> {
        let nonce = old.signed.transaction.nonce
        let signed: SignedTransaction
        do {
            try await journal.assigned(
                id: id, from: from, nonce: nonce, idempotencyKey: nil, requestDigest: nil,
                replaces: old.id)
        } catch {
            return .failure(.internalError("journal unavailable, nothing was sent: \(error)"))
        }
        do throws(SignerError) {
            signed = try await wallet.sign(transaction: transaction, from: from)
        } catch {
            try? await journal.failed(id: id, reason: error.description)
            return .failure(.internalError("signing failed, nothing was broadcast: \(error.description)"))
        }
        do {
            try await journal.signed(id: id, nonce: nonce, raw: signed.raw, hash: signed.hash)
        } catch {
            return .failure(.internalError("journal unavailable, nothing was sent: \(error)"))
        }
        var backoff = settings.retryBackoff
        for _ in 0..<settings.lane.submitAttemptsBeforeAnswer {
            switch await verdict(for: signed) {
            case .accepted:
                try? await journal.submitted(id: id)
                try? await journal.replaced(id: old.id)
                state.withLock { state in
                    state.lanes[from]?.replaced(by: id, signed)
                    state.acceptedHashes[signed.hash] = (from, nonce)
                }
                logger.info(
                    "transaction replaced",
                    metadata: [
                        "signer.address": "\(from)", "tx.nonce": "\(nonce)", "tx.hash": "\(signed.hash)",
                        "tx.replaced": "\(old.signed.hash)",
                    ])
                observers.submitted(signed, connectionID)
                observers.replaced(old.signed.hash, signed)
                return .success(signed)
            case .nonceTaken:
                try? await journal.failed(id: id, reason: "the transaction it replaces was mined first")
                state.withLock { $0.lanes[from]?.replacementAbandoned(nonce: nonce) }
                return .failure(
                    .server(
                        "nonce \(nonce) is already mined (\(old.signed.hash.hex) or another "
                            + "transaction); nothing was replaced"))
            case .rejected(let error):
                try? await journal.failed(id: id, reason: error.message)
                state.withLock { $0.lanes[from]?.replacementAbandoned(nonce: nonce) }
                return .failure(error)
            case .nonceGap, .noVerdict:
                try? await Task.sleep(for: backoff.nextDelay())
            }
        }
        // The replacement may be at the node: track it as well; the first one mined settles the nonce.
        state.withLock { state in
            state.acceptedHashes[signed.hash] = (from, nonce)
            state.lanes[from]?.replacementAbandoned(nonce: nonce)
        }
        observers.submitted(signed, connectionID)
        return .failure(Self.outcomeUnknown(signed))
    }

    // MARK: Answers

    /// Answers every caller waiting on `id` and forgets the request.
    private func finish(_ id: UInt64, _ result: Result<SignedTransaction, RPCError>) {
        let pending = state.withLock { state -> Pending? in
            state.journaledHash.removeValue(forKey: id)
            let pending = state.pending.removeValue(forKey: id)
            if let key = pending?.idempotencyKey { state.keys.release(key, id: id) }
            return pending
        }
        for completion in pending?.completions ?? [] { completion(result) }
    }

    /// Answers the waiting callers now but keeps the request (its transaction is still being resubmitted).
    private func answerEarly(_ id: UInt64, _ result: Result<SignedTransaction, RPCError>) {
        let completions = state.withLock { state -> [Completion] in
            defer { state.pending[id]?.completions.removeAll() }
            return state.pending[id]?.completions ?? []
        }
        for completion in completions { completion(result) }
    }

    private static func result(of record: JournalRecord) -> Result<SignedTransaction, RPCError> {
        switch record.state {
        case .submitted, .mined, .replaced:
            if let raw = record.raw, let signed = try? SignedTransaction(raw: raw) { return .success(signed) }
            return .failure(.server("journal record \(record.id) has no transaction"))
        case .failed:
            return .failure(.server(record.failure ?? "transaction failed"))
        case .assigned, .abandoned:
            return .failure(
                .internalError(
                    "an earlier request with this idempotency key did not complete; nothing was broadcast by it"))
        case .signed:
            // Signed and possibly sent: never -32603 (clients retry that), and the hash lets the caller look.
            return .failure(
                .server(
                    "an earlier request with this idempotency key was signed but its submission outcome is unknown",
                    data: record.hash.map { .string($0.hex) }))
        }
    }

    static func outcomeUnknown(_ signed: SignedTransaction) -> RPCError {
        .server(
            "submission outcome unknown: the node did not confirm receipt; the transaction may still be mined",
            data: .string(signed.hash.hex))
    }

    // MARK: Performing lane actions

    private func lane(_ from: Address, _ event: (inout NonceLane) -> [NonceLane.Action]) -> [NonceLane.Action] {
        state.withLock { state in event(&state.lanes[from, default: NonceLane(settings: settings.lane)]) }
    }

    /// Carries out one batch of a lane's actions in order: answers and journal writes here, node calls and
    /// signatures as sibling work items (in the order given), so that nothing waits behind a slow signature.
    ///
    /// Failures are journaled before anything later starts (a renumbered successor must not reach the node while
    /// the journal still holds the failed one as sendable). Successes are journaled after the next submission is
    /// on its way: the accepted bytes are already journaled as signed, and recovery resends a signed record, so
    /// the `submitted` mark only has to precede the client's answer, not the next nonce.
    private func perform(_ actions: [NonceLane.Action], from: Address) async {
        var later: [NonceLane.Action] = []
        var succeeded: [(UInt64, SignedTransaction)] = []
        for action in actions {
            switch action {
            case .succeeded(let id, let signed):
                succeeded.append((id, signed))
            case .failed(let id, let failure):
                await fail(id, failure)
            case .outcomeUnknown(let id, let signed):
                answerEarly(id, .failure(Self.outcomeUnknown(signed)))
            default:
                later.append(action)
            }
        }
        // Each slow action is its own work item: siblings run concurrently, none waits behind another's I/O.
        for action in later { workInput.yield(.slow(from, action)) }
        for (id, signed) in succeeded { await succeed(id, signed, from: from) }
    }

    private func carryOutSlow(_ action: NonceLane.Action, from: Address) async {
        switch action {
        case .sync: await sync(from)
        case .sign(let id, let transaction, let token): await sign(id, transaction, token: token, from: from)
        case .submit(let id, let signed, let token): await submit(id, signed, token: token, from: from)
        case .retrySubmit(let id, let token, let failures):
            try? await Task.sleep(for: settings.retryBackoff.delay(afterFailures: failures - 1))
            await perform(lane(from) { $0.retryDue(id, token: token) }, from: from)
        case .rebroadcast(let transactions): await rebroadcast(transactions)
        case .replaceStuck(let id, let signed): await replaceStuck(id, signed, from: from)
        case .succeeded, .failed, .outcomeUnknown: await perform([action], from: from)
        }
    }

    /// The lane's first nonce = max(node's pending count, journal's last accepted + 1): neither a restart nor
    /// transactions sent around the gateway can make a nonce repeat.
    private func sync(_ from: Address) async {
        var backoff = settings.retryBackoff
        for attempt in 1...settings.lane.unsentAttemptsBeforeFailure {
            let counted = await readPendingCount(from)
            if case .success(let pending) = counted {
                let actions: [NonceLane.Action]
                do {
                    let journaled = try await journal.lastAcceptedNonce(from: from).map { $0 + 1 } ?? 0
                    actions = lane(from) { $0.synced(nonce: max(pending, journaled)) }
                } catch {
                    actions = lane(from) { $0.syncFailed(.nodeUnavailable("journal unavailable: \(error)")) }
                }
                resumeSyncWaiters(from)
                return await perform(actions, from: from)
            }
            logger.warning(
                "cannot read the account's nonce from the node",
                metadata: [
                    "signer.address": "\(from)", "attempt": "\(attempt)", "error": "\(counted)",
                ])
            guard (try? await Task.sleep(for: backoff.nextDelay())) != nil else { break }
        }
        let actions = lane(from) { $0.syncFailed(.nodeUnavailable("cannot read the account's nonce from the node")) }
        resumeSyncWaiters(from)
        await perform(actions, from: from)
    }

    /// One read of the node's pending transaction count of `from` (what the node would take as the next nonce).
    private func readPendingCount(_ from: Address) async -> Result<UInt64, NodeError> {
        let counted = await node.call(method: "eth_getTransactionCount", params: [.string(from.lowercaseHex), "pending"])
        switch counted {
        case .success(let value):
            guard let text = value.stringValue, let count = try? Hex.decodeQuantity(text) else {
                return .failure(.malformedResponse("eth_getTransactionCount answered \(value), not a quantity"))
            }
            return .success(count)
        case .failure(let error):
            return .failure(error)
        }
    }

    private func resumeSyncWaiters(_ from: Address) {
        let waiters = state.withLock { $0.syncWaiters.removeValue(forKey: from) ?? [] }
        for waiter in waiters { waiter.resume() }
    }

    private func sign(_ id: UInt64, _ transaction: Transaction, token: Int, from: Address) async {
        let request = state.withLock { $0.pending[id] }
        do {
            try await journal.assigned(
                id: id, from: from, nonce: transaction.nonce,
                idempotencyKey: request?.idempotencyKey, requestDigest: request?.requestDigest,
                replaces: nil)
        } catch {
            let failure = SignerError.backendUnavailable("journal unavailable: \(error)")
            return await perform(lane(from) { $0.signFailed(id, token: token, failure) }, from: from)
        }
        var lastError = SignerError.backendUnavailable("not attempted")
        var backoff = settings.retryBackoff
        for round in 1...settings.signAttempts {
            do throws(SignerError) {
                let signed = try await wallet.sign(transaction: transaction, from: from)
                await journalSigned(id, signed)
                return await perform(lane(from) { $0.signed(id, token: token, signed) }, from: from)
            } catch {
                lastError = error
                guard !error.isPermanent, round < settings.signAttempts else { break }
                try? await Task.sleep(for: backoff.nextDelay())
            }
        }
        logger.warning("signing failed", metadata: ["signer.address": "\(from)", "error": "\(lastError)"])
        await perform(lane(from) { $0.signFailed(id, token: token, lastError) }, from: from)
    }

    /// Journals a signature as soon as it arrives, while earlier nonces are still being submitted: the commit
    /// (shared with other writers, `GroupCommit`) is then off the lane's one-at-a-time path to the node. If it
    /// fails, `submit` tries again before the bytes leave the gateway. A record signed ahead of its turn may never
    /// be sent; recovery resends such a record only when its nonce is next (`recover`).
    private func journalSigned(_ id: UInt64, _ signed: SignedTransaction) async {
        do {
            try await recordSigned(id, signed)
        } catch {
            logger.debug("journal: a signature is recorded at submission instead", metadata: ["error": "\(error)"])
        }
    }

    /// Journals `signed` as `id`'s bytes, once: a later call with the same bytes writes nothing.
    private func recordSigned(_ id: UInt64, _ signed: SignedTransaction) async throws {
        guard state.withLock({ $0.journaledHash[id] != signed.hash }) else { return }
        try await journal.signed(id: id, nonce: signed.transaction.nonce, raw: signed.raw, hash: signed.hash)
        state.withLock { $0.journaledHash[id] = signed.hash }
    }

    private func submit(_ id: UInt64, _ signed: SignedTransaction, token: Int, from: Address) async {
        // The signed bytes are journaled before they first leave the gateway (usually already when signed); a
        // retry of the same bytes never rewrites the journal (a failed rewrite must not turn a possible broadcast
        // into an error).
        do {
            try await recordSigned(id, signed)
        } catch {
            let error = RPCError.internalError("journal unavailable, nothing was broadcast: \(error)")
            return await perform(lane(from) { $0.submissionAnswered(id, token: token, .rejected(error)) }, from: from)
        }
        let answer = await verdict(for: signed)
        if case .noVerdict = answer {
            logger.warning(
                "submission outcome unknown; the same bytes will be sent again",
                metadata: [
                    "signer.address": "\(from)", "tx.hash": "\(signed.hash)",
                ])
        }
        await perform(lane(from) { $0.submissionAnswered(id, token: token, answer) }, from: from)
    }

    /// One submission, classified for the lane. "Nonce too low" is a verdict only with proof: our own hash at
    /// the node means it was accepted (an earlier try whose answer was lost); an unknown hash means another
    /// transaction took the nonce.
    private func verdict(for signed: SignedTransaction) async -> NonceLane.Answer {
        let outcome = await node.call(method: "eth_sendRawTransaction", params: [.string(Hex.encode(signed.raw))])
        switch SubmissionVerdict(outcome) {
        case .accepted:
            return .accepted
        case .nonceUsed:
            switch await node.call(method: "eth_getTransactionByHash", params: [.string(signed.hash.hex)]) {
            case .success(let found) where !found.isNull: return .accepted
            case .success: return .nonceTaken
            // The raw transaction was sent either way: a failed lookup proves nothing about it.
            case .failure: return .noVerdict(mayHaveReachedNode: true)
            }
        case .nonceOccupied:
            return .nonceTaken
        case .nonceGap:
            return .nonceGap
        case .retryLater(_, let mayHaveReachedNode):
            return .noVerdict(mayHaveReachedNode: mayHaveReachedNode)
        case .rejected(let error):
            return .rejected(error)
        }
    }

    private func succeed(_ id: UInt64, _ signed: SignedTransaction, from: Address) async {
        do {
            try await journal.submitted(id: id)
        } catch {
            // The transaction is on its way; the hash is still the truth. Tracking continues from memory.
            logger.error(
                "journal could not record a submission",
                metadata: ["tx.hash": "\(signed.hash)", "error": "\(error)"])
        }
        let connectionID = state.withLock { state -> UInt64? in
            state.acceptedHashes[signed.hash] = (from, signed.transaction.nonce)
            return state.pending[id]?.connectionID
        }
        observers.submitted(signed, connectionID)
        // The idempotency key is released only now, after the journal says "submitted": a repeat that arrives later
        // reads the journal and gets the same hash.
        finish(id, .success(signed))
    }

    private func fail(_ id: UInt64, _ failure: NonceLane.LaneFailure) async {
        let error: RPCError
        switch failure {
        case .signing(let signerError):
            error = .internalError("signing failed, nothing was broadcast: \(signerError.description)")
        case .rejectedByNode(let rejection):
            error = rejection
        case .nodeUnavailable(let detail):
            error = .internalError("\(detail); nothing was broadcast")
        }
        try? await journal.failed(id: id, reason: error.message)
        finish(id, .failure(error))
    }

    // MARK: Accepted transactions: resend, replace, settle

    private func rebroadcast(_ transactions: [SignedTransaction]) async {
        for signed in transactions {
            if case .retryLater = SubmissionVerdict(
                await node.call(method: "eth_sendRawTransaction", params: [.string(Hex.encode(signed.raw))]))
            {
                return  // the node is away: the next head or reconnection sends them again
            }
        }
    }

    private func replaceStuck(_ id: UInt64, _ signed: SignedTransaction, from: Address) async {
        guard let transaction = await bumpedTransaction(signed.transaction, .speedUp, from: from) else {
            logger.warning(
                "a stuck transaction cannot be replaced within send.maxFeePerGas",
                metadata: [
                    "signer.address": "\(from)", "tx.hash": "\(signed.hash)",
                ])
            state.withLock { $0.lanes[from]?.replacementAbandoned(nonce: signed.transaction.nonce) }
            return
        }
        let (newID, old) = state.withLock { state -> (UInt64, NonceLane.Accepted?) in
            defer { state.nextID += 1 }
            return (state.nextID, state.lanes[from]?.accepted[signed.transaction.nonce])
        }
        guard let old, old.signed.hash == signed.hash else { return }
        if case .failure(let error) = await replace(old, with: transaction, from: from, id: newID, connectionID: nil) {
            logger.warning(
                "a stuck transaction could not be replaced",
                metadata: [
                    "signer.address": "\(from)", "tx.hash": "\(signed.hash)", "error": "\(error)",
                ])
        }
    }

    /// A new head: every lane's accepted transactions are sent again now and then, and replaced once stuck.
    public func newHead(_ number: UInt64) {
        let now = ContinuousClock.now
        let work = state.withLock { state -> [(Address, [NonceLane.Action])] in
            var work: [(Address, [NonceLane.Action])] = []
            // A copy of the keys: mutating `lanes` while iterating its own keys view would copy every lane each time.
            for address in Array(state.lanes.keys) where !(state.lanes[address]?.accepted.isEmpty ?? true) {
                let actions = state.lanes[address]!.newHead(number, now: now)
                if !actions.isEmpty { work.append((address, actions)) }
            }
            return work
        }
        for (address, actions) in work { workInput.yield(.lane(address, actions)) }
    }

    /// The node link is back: a restarted node may have lost its pool, so every accepted transaction goes again.
    public func nodeReconnected() {
        let work = state.withLock { state in
            state.lanes.compactMap { address, lane -> (Address, [NonceLane.Action])? in
                let actions = lane.reconnected()
                return actions.isEmpty ? nil : (address, actions)
            }
        }
        for (address, actions) in work { workInput.yield(.lane(address, actions)) }
    }

    /// What the receipt tracker saw: a mined hash settles its nonce (and every other hash of it); a reorged one is
    /// pending again.
    public func receiptEvent(_ event: ReceiptEvent) {
        switch event {
        case .mined(let hash, _, let blockNumber, _):
            let settled = state.withLock { state -> [Bytes32] in
                guard let (from, nonce) = state.acceptedHashes[hash] else { return [] }
                state.lanes[from]?.mined(nonce: nonce)
                // Lower nonces are mined too (their receipts may simply not be seen yet: keep tracking those); other
                // hashes of this very nonce (replacements) can never be mined now.
                let settled = state.acceptedHashes.filter { $0.value.from == from && $0.value.nonce <= nonce }
                for other in settled.keys { state.acceptedHashes.removeValue(forKey: other) }
                return settled.filter { $0.key != hash && $0.value.nonce == nonce }.map(\.key)
            }
            if !settled.isEmpty { observers.settled(settled) }
            workInput.yield(.mined(hash, blockNumber))
        case .reorged(let hash):
            workInput.yield(.reorged(hash))
        case .confirmed:
            break
        }
    }

    private func reorged(_ hash: Bytes32) async {
        guard let record = try? await journal.record(hash: hash), let raw = record.raw,
            let signed = try? SignedTransaction(raw: raw)
        else { return }
        try? await journal.unmined(hash: hash)
        state.withLock { state in
            state.lanes[record.from]?.unmined(NonceLane.Accepted(id: record.id, signed: signed))
            state.acceptedHashes[hash] = (record.from, record.nonce)
        }
        workInput.yield(.lane(record.from, [.rebroadcast([signed])]))
    }

    // MARK: Recovery

    /// The node's pending transaction count of `from`, asked until it answers; `nil` only when shutting down.
    private func pendingCount(_ from: Address) async -> UInt64? {
        var backoff = settings.retryBackoff
        while !Task.isCancelled {
            if case .success(let count) = await readPendingCount(from) { return count }
            try? await Task.sleep(for: backoff.nextDelay())
        }
        return nil
    }

    /// Settles the journal's unsettled records of one address, in nonce order, before its lane opens: each is sent
    /// again until the node gives a verdict. A record whose nonce another transaction took is marked so and
    /// skipped; the ones the node holds become the lane's accepted transactions.
    ///
    /// A record only signed (never confirmed sent) may have been signed ahead of its turn, while an earlier nonce
    /// was still on its way; if that earlier nonce is free now (refused, or never sent), sending it would leave a
    /// gap the node would queue behind forever. Such a record is failed, not sent: the lane numbers from the
    /// free nonce.
    private func recover(_ from: Address, _ records: [JournalRecord]) async {
        var accepted: [UInt64: NonceLane.Accepted] = [:]
        var backoff = settings.retryBackoff
        // The lowest nonce not taken at the node or by a record settled here; read once, if any record needs it.
        var untaken: UInt64? = nil
        if records.contains(where: { $0.state == .signed }) {
            untaken = await pendingCount(from)
            guard untaken != nil else { return }  // shutting down: the journal still holds everything
        }
        recordLoop: for record in records {
            guard let raw = record.raw, let signed = try? SignedTransaction(raw: raw) else {
                try? await journal.failed(id: record.id, reason: "journal record has no readable transaction")
                continue
            }
            if record.state == .signed, let untaken, record.nonce > untaken {
                logger.notice(
                    "journal: a transaction signed ahead of its turn is dropped unsent",
                    metadata: [
                        "signer.address": "\(from)", "tx.hash": "\(signed.hash)", "tx.nonce": "\(record.nonce)",
                        "tx.freeNonce": "\(untaken)",
                    ])
                try? await journal.failed(
                    id: record.id,
                    reason: "never sent: the gateway stopped before nonce \(untaken) was taken; nothing was broadcast")
                continue
            }
            var gaps = 0
            while !Task.isCancelled {
                let answer = await verdict(for: signed)
                switch answer {
                case .accepted, .nonceTaken: untaken = untaken.map { max($0, record.nonce + 1) }
                default: break
                }
                switch answer {
                case .accepted:
                    if record.state == .signed { try? await journal.submitted(id: record.id) }
                    if let previous = accepted[record.nonce] { try? await journal.replaced(id: previous.id) }
                    accepted[record.nonce] = NonceLane.Accepted(id: record.id, signed: signed)
                    state.withLock { $0.acceptedHashes[signed.hash] = (from, record.nonce) }
                    observers.submitted(signed, nil)
                    backoff.reset()
                    continue recordLoop
                case .nonceTaken:
                    let reason =
                        accepted[record.nonce] != nil
                        ? "replaced by a later transaction of the gateway at the same nonce"
                        : "nonce \(record.nonce) was taken by another transaction"
                    logger.warning(
                        "journal: a transaction can no longer be mined",
                        metadata: [
                            "signer.address": "\(from)", "tx.hash": "\(signed.hash)", "reason": "\(reason)",
                        ])
                    if accepted[record.nonce] != nil {
                        try? await journal.replaced(id: record.id)
                    } else {
                        try? await journal.failed(id: record.id, reason: reason)
                    }
                    continue recordLoop
                case .rejected(let error):
                    logger.warning(
                        "journal: resubmission refused by the node",
                        metadata: [
                            "signer.address": "\(from)", "tx.hash": "\(signed.hash)", "error": "\(error)",
                        ])
                    try? await journal.failed(id: record.id, reason: error.message)
                    continue recordLoop
                case .nonceGap:
                    gaps += 1
                    if gaps >= settings.lane.unsentAttemptsBeforeFailure {
                        try? await journal.failed(id: record.id, reason: "the node lacks earlier nonces")
                        continue recordLoop
                    }
                    try? await Task.sleep(for: backoff.nextDelay())
                case .noVerdict:
                    try? await Task.sleep(for: backoff.nextDelay())
                }
            }
            return  // shutting down: the lane stays closed; the journal still holds the rest
        }
        let actions = lane(from) { $0.recovered(accepted: Array(accepted.values)) }
        logger.info(
            "journal: address recovered",
            metadata: [
                "signer.address": "\(from)", "tx.count": "\(records.count)", "tx.pending": "\(accepted.count)",
            ])
        await perform(actions, from: from)
    }

    /// Requests per address not yet answered.
    public var queueDepths: [Address: Int] {
        state.withLock { state in state.lanes.mapValues(\.pendingCount).filter { $0.value > 0 } }
    }
}
