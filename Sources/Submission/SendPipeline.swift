import Ethereum
import JSON
import JSONRPC
import Logging
import Node
import Signers
import Synchronization

/// `eth_sendTransaction` end to end: validate, fill, assign the nonce in the address's lane, journal, sign
/// (concurrently), submit in nonce order, journal, answer with the hash, hand the hash to the receipt tracker.
///
/// The lanes are values (`NonceLane`) kept under one lock that is held for microseconds and never across I/O; this
/// class performs the actions they return. Every failure a client sees means nothing was broadcast, except a node
/// error after submission, which is the node's own verdict on the transaction.
public final class SendPipeline: Sendable {
    public struct Settings: Sendable, Hashable {
        /// Attempts for a signature when the backend is unavailable (throttled HSM, network).
        public var signAttempts = 3
        /// Attempts to send a signed transaction whose first submission had an unknown outcome.
        public var submitAttempts = 10
        public var retryDelayMilliseconds = 200

        public init() {}
    }

    public typealias Completion = @Sendable (Result<SignedTransaction, RPCError>) -> Void

    private struct Pending: Sendable {
        let from: Address
        let origin: UInt64?
        let idempotencyKey: String?
        var completions: [Completion]
    }

    private struct State: Sendable {
        var lanes: [Address: NonceLane] = [:]
        var pending: [UInt64: Pending] = [:]
        var requestByIdempotencyKey: [String: UInt64] = [:]
        var nextID: UInt64 = 1
        var submitAttempts: [UInt64: Int] = [:]
        /// Ids continue after the journal's; until then sends wait.
        var prepared = false
    }

    private let wallet: Wallet
    private let node: any NodeClient
    private let filler: TransactionFiller
    private let journal: any Journal
    private let settings: Settings
    private let logger: Logger
    private let state = Mutex(State())
    /// Told about every transaction that reached the node (hash, sender, originating connection).
    private let onSubmitted: @Sendable (SignedTransaction, _ origin: UInt64?) -> Void

    public init(wallet: Wallet, node: any NodeClient, filler: TransactionFiller, journal: any Journal,
                settings: Settings = Settings(), logger: Logger,
                onSubmitted: @escaping @Sendable (SignedTransaction, _ origin: UInt64?) -> Void = { _, _ in }) {
        self.wallet = wallet
        self.node = node
        self.filler = filler
        self.journal = journal
        self.settings = settings
        self.logger = logger
        self.onSubmitted = onSubmitted
    }

    /// Continues request ids after the journal's and marks never-signed assignments abandoned. Sends wait for it:
    /// a request id must never collide with a journaled one.
    public func prepare() async throws {
        let maximum = try await journal.maximumID()
        let abandoned = try await journal.abandonUnsigned()
        state.withLock { state in
            state.nextID = max(state.nextID, maximum + 1)
            state.prepared = true
        }
        if abandoned > 0 {
            logger.notice("journal: assignments that never got a signature were abandoned", metadata: ["journal.count": "\(abandoned)"])
        }
    }

    private func waitUntilPrepared() async {
        while !state.withLock({ $0.prepared }) { try? await Task.sleep(for: .milliseconds(5)) }
    }

    /// Resubmits what was signed but not seen mined (a node that has it answers "already known"), once the node is
    /// reachable.
    public func recover() async throws {
        for record in try await journal.unfinished() {
            guard let raw = record.raw, let signed = try? SignedTransaction(raw: raw) else { continue }
            switch await sendRaw(signed) {
            case .accepted:
                try await journal.submitted(id: record.id)
                onSubmitted(signed, nil)
            case .rejected(let code, let message):
                logger.warning("journal: resubmission refused by the node", metadata: [
                    "signer.address": "\(record.from)", "tx.hash": "\(signed.hash)", "error": "\(code) \(message)"])
                if record.state == .signed { try await journal.failed(id: record.id, reason: message) } else { onSubmitted(signed, nil) }
            case .unknown:
                onSubmitted(signed, nil)  // keep tracking; the receipt tracker will see it if it lands
            }
        }
    }

    // MARK: Sending

    public func send(_ request: TransactionRequest, idempotencyKey: String? = nil, origin: UInt64? = nil) async
        -> Result<SignedTransaction, RPCError>
    {
        await withCheckedContinuation { continuation in
            send(request, idempotencyKey: idempotencyKey, origin: origin) { continuation.resume(returning: $0) }
        }
    }

    public func send(_ request: TransactionRequest, idempotencyKey: String? = nil, origin: UInt64? = nil,
                     completion: @escaping Completion) {
        guard wallet.account(for: request.from) != nil else {
            return completion(.failure(.unauthorized("from address \(request.from.checksummed) is not an account of this gateway")))
        }
        Task { await self.start(request, idempotencyKey: idempotencyKey, origin: origin, completion: completion) }
    }

    private func start(_ request: TransactionRequest, idempotencyKey: String?, origin: UInt64?,
                       completion: @escaping Completion) async {
        await waitUntilPrepared()
        // The id (and the idempotency key) are taken atomically: a concurrent repeat of the same key joins this
        // request instead of racing it.
        let claim = state.withLock { state -> (id: UInt64, joined: Bool) in
            if let key = idempotencyKey, let existing = state.requestByIdempotencyKey[key] {
                state.pending[existing]?.completions.append(completion)
                return (existing, true)
            }
            let id = state.nextID
            state.nextID += 1
            state.pending[id] = Pending(from: request.from, origin: origin, idempotencyKey: idempotencyKey, completions: [completion])
            if let key = idempotencyKey { state.requestByIdempotencyKey[key] = id }
            return (id, false)
        }
        if claim.joined { return }
        let id = claim.id
        do {
            if let idempotencyKey {
                do {
                    if let record = try await journal.record(idempotencyKey: idempotencyKey) {
                        return finish(id, Self.result(of: record))
                    }
                } catch {
                    return finish(id, .failure(.internalError("journal unavailable: \(error)")))
                }
            }
            let transaction: Transaction
            do throws(RPCError) {
                transaction = try await filler.fill(request)
            } catch {
                return finish(id, .failure(error))
            }
            if request.nonce != nil {
                return await sendWithCallerNonce(id, transaction, from: request.from, idempotencyKey: idempotencyKey, origin: origin)
            }
            let actions = state.withLock { state in state.lanes[request.from, default: NonceLane()].enqueue(id, transaction) }
            perform(actions, from: request.from)
        }
    }

    /// Answers every caller waiting on `id` and forgets the request.
    private func finish(_ id: UInt64, _ result: Result<SignedTransaction, RPCError>) {
        let pending = state.withLock { state -> Pending? in
            state.submitAttempts.removeValue(forKey: id)
            let pending = state.pending.removeValue(forKey: id)
            if let key = pending?.idempotencyKey, state.requestByIdempotencyKey[key] == id {
                state.requestByIdempotencyKey.removeValue(forKey: key)
            }
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
        case .submitted, .mined:
            if let raw = record.raw, let signed = try? SignedTransaction(raw: raw) { return .success(signed) }
            return .failure(.internalError("journal record \(record.id) has no transaction"))
        case .failed:
            return .failure(.server(record.failure ?? "transaction failed"))
        case .assigned, .abandoned:
            return .failure(.internalError("an earlier request with this idempotency key did not complete; nothing was broadcast by it"))
        case .signed:
            // Signed and possibly sent: never -32603 (clients retry that), and the hash lets the caller look.
            return .failure(.server("an earlier request with this idempotency key was signed but its submission outcome is unknown",
                                    data: record.hash.map { .string($0.hex) }))
        }
    }

    /// A caller-chosen nonce bypasses the lane (the caller owns the ordering); a collision with the lane surfaces as
    /// the node's "nonce too low", after which the lane resyncs.
    private func sendWithCallerNonce(_ id: UInt64, _ transaction: Transaction, from: Address, idempotencyKey: String?,
                                     origin: UInt64?) async {
        let signed: SignedTransaction
        do {
            try await journal.assigned(id: id, from: from, nonce: transaction.nonce, idempotencyKey: idempotencyKey)
            let signature = try await wallet.sign(digest: transaction.signingHash, from: from)
            signed = SignedTransaction(transaction: transaction, signature: signature)
            try await journal.signed(id: id, nonce: transaction.nonce, raw: signed.raw, hash: signed.hash)
        } catch let error as SignerError {
            try? await journal.failed(id: id, reason: error.description)
            return finish(id, .failure(.internalError("signing failed, nothing was broadcast: \(error.description)")))
        } catch {
            return finish(id, .failure(.internalError("journal unavailable, nothing was broadcast: \(error)")))
        }
        for attempt in 1...settings.submitAttempts {
            switch await sendRaw(signed) {
            case .accepted:
                // Broadcast: from here on only the hash is the truth; a journal hiccup must not turn it into an error.
                do { try await journal.submitted(id: id) } catch {
                    logger.error("journal could not record a submission", metadata: ["tx.hash": "\(signed.hash)", "error": "\(error)"])
                }
                onSubmitted(signed, origin)
                return finish(id, .success(signed))
            case .rejected(let code, let message):
                try? await journal.failed(id: id, reason: message)
                return finish(id, .failure(RPCError(code: code, message: message)))
            case .unknown where attempt < settings.submitAttempts:
                try? await Task.sleep(for: .milliseconds(settings.retryDelayMilliseconds * attempt))
            case .unknown:
                break
            }
        }
        onSubmitted(signed, origin)  // tracked: if it lands, the receipt tracker will see it
        finish(id, .failure(Self.outcomeUnknown(signed)))
    }

    static func outcomeUnknown(_ signed: SignedTransaction) -> RPCError {
        .server("submission outcome unknown: the node did not confirm receipt; the transaction may still be mined",
                data: .string(signed.hash.hex))
    }

    // MARK: Performing lane actions

    private func perform(_ actions: [NonceLane.Action], from: Address) {
        for action in actions {
            switch action {
            case .sync:
                Task { await sync(from) }
            case .sign(let id, let transaction, let attempt):
                Task { await sign(id, transaction, attempt: attempt, from: from) }
            case .submit(let id, let signed):
                Task { await submit(id, signed, from: from) }
            case .succeeded(let id, let signed):
                Task { await succeed(id, signed) }
            case .failed(let id, let failure):
                Task { await fail(id, failure) }
            }
        }
    }

    private func lane(_ from: Address, _ event: (inout NonceLane) -> [NonceLane.Action]) {
        let actions = state.withLock { state in event(&state.lanes[from, default: NonceLane()]) }
        perform(actions, from: from)
    }

    /// Initial nonce = max(node's pending count, journal's last used + 1): neither a restart nor transactions sent
    /// around the gateway can make a nonce repeat.
    private func sync(_ from: Address) async {
        var delay = settings.retryDelayMilliseconds
        for attempt in 1...settings.submitAttempts {
            let counted = await node.call(method: "eth_getTransactionCount", params: [.string(from.lowercaseHex), "pending"])
            if case .success(let value) = counted, let text = value.stringValue, let pending = try? Hex.decodeQuantity(text) {
                do {
                    let journaled = try await journal.lastUsedNonce(from: from).map { $0 + 1 } ?? 0
                    return lane(from) { $0.synced(nonce: max(pending, journaled)) }
                } catch {
                    return lane(from) { $0.syncFailed(.nodeUnavailable("journal unavailable: \(error)")) }
                }
            }
            logger.warning("cannot read the account's nonce from the node", metadata: [
                "signer.address": "\(from)", "attempt": "\(attempt)", "error": "\(counted)"])
            try? await Task.sleep(for: .milliseconds(delay))
            delay = min(delay * 2, 5_000)
        }
        lane(from) { $0.syncFailed(.nodeUnavailable("cannot read the account's nonce from the node")) }
    }

    private func sign(_ id: UInt64, _ transaction: Transaction, attempt: Int, from: Address) async {
        let idempotencyKey = state.withLock { $0.pending[id]?.idempotencyKey }
        do {
            try await journal.assigned(id: id, from: from, nonce: transaction.nonce, idempotencyKey: idempotencyKey)
        } catch {
            return lane(from) { $0.signFailed(id, attempt: attempt, .backendUnavailable("journal unavailable: \(error)")) }
        }
        var lastError = SignerError.backendUnavailable("not attempted")
        for round in 1...settings.signAttempts {
            do {
                let signature = try await wallet.sign(digest: transaction.signingHash, from: from)
                let signed = SignedTransaction(transaction: transaction, signature: signature)
                return lane(from) { $0.signed(id, attempt: attempt, signed) }
            } catch {
                lastError = error
                guard !error.isPermanent, round < settings.signAttempts else { break }
                try? await Task.sleep(for: .milliseconds(settings.retryDelayMilliseconds * round))
            }
        }
        logger.warning("signing failed", metadata: ["signer.address": "\(from)", "error": "\(lastError)"])
        lane(from) { $0.signFailed(id, attempt: attempt, lastError) }
    }

    private func submit(_ id: UInt64, _ signed: SignedTransaction, from: Address) async {
        do {
            try await journal.signed(id: id, nonce: signed.transaction.nonce, raw: signed.raw, hash: signed.hash)
        } catch {
            return lane(from) { $0.submitFailed(id, code: -32603, message: "journal unavailable: \(error)") }
        }
        switch await sendRaw(signed) {
        case .accepted:
            lane(from) { $0.submitted(id) }
        case .rejected(let code, let message):
            lane(from) { $0.submitFailed(id, code: code, message: message) }
        case .unknown(let error):
            let attempts = state.withLock { state -> Int in
                state.submitAttempts[id, default: 0] += 1
                return state.submitAttempts[id]!
            }
            logger.warning("submission outcome unknown; sending the same bytes again", metadata: [
                "signer.address": "\(from)", "tx.hash": "\(signed.hash)", "attempt": "\(attempts)", "error": "\(error)"])
            if attempts == settings.submitAttempts {
                // The client is not kept waiting for ever; the lane keeps resending (nothing after it may go first).
                answerEarly(id, .failure(Self.outcomeUnknown(signed)))
            }
            try? await Task.sleep(for: .milliseconds(settings.retryDelayMilliseconds * min(attempts, 10)))
            lane(from) { $0.submissionUnknown(id) }
        }
    }

    private enum SubmissionOutcome {
        case accepted
        case rejected(code: Int, message: String)
        case unknown(RPCError)
    }

    private func sendRaw(_ signed: SignedTransaction) async -> SubmissionOutcome {
        switch await node.call(method: "eth_sendRawTransaction", params: [.string(Hex.encode(signed.raw))]) {
        case .success:
            return .accepted
        case .failure(let error) where error.message.hasPrefix("already known"):
            return .accepted
        case .failure(let error) where error.message.hasPrefix("nonce too low"):
            // After an earlier attempt with an unknown outcome, "nonce too low" may be our own transaction, mined:
            // only a node that answers "no such transaction" makes it a rejection.
            switch await node.call(method: "eth_getTransactionByHash", params: [.string(signed.hash.hex)]) {
            case .success(let found) where !found.isNull: return .accepted
            case .success: return .rejected(code: error.code, message: error.message)
            case .failure(let lookup): return .unknown(lookup)
            }
        case .failure(let error) where NodeError.isTransportFailure(error):
            // The link failed (or a proxy answered for the node): the node may have the transaction.
            return .unknown(error)
        case .failure(let error):
            return .rejected(code: error.code, message: error.message)
        }
    }

    private func succeed(_ id: UInt64, _ signed: SignedTransaction) async {
        do {
            try await journal.submitted(id: id)
        } catch {
            // The transaction is on its way; the hash is still the truth. Tracking continues from memory.
            logger.error("journal could not record a submission", metadata: ["tx.hash": "\(signed.hash)", "error": "\(error)"])
        }
        let origin = state.withLock { $0.pending[id]?.origin }
        onSubmitted(signed, origin)
        // The idempotency key is released only now, after the journal says "submitted": a repeat that arrives later
        // reads the journal and gets the same hash.
        finish(id, .success(signed))
    }

    private func fail(_ id: UInt64, _ failure: NonceLane.LaneFailure) async {
        let error: RPCError
        switch failure {
        case .signing(let signerError): error = .internalError("signing failed, nothing was broadcast: \(signerError.description)")
        case .rejectedByNode(let code, let message): error = RPCError(code: code, message: message)
        case .nodeUnavailable(let detail): error = .internalError("\(detail); nothing was broadcast")
        }
        try? await journal.failed(id: id, reason: error.message)
        finish(id, .failure(error))
    }

    /// Requests per address not yet answered (for /status).
    public var queueDepths: [Address: Int] {
        state.withLock { state in state.lanes.mapValues(\.pendingCount).filter { $0.value > 0 } }
    }
}
