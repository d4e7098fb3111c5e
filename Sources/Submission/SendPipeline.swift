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

    /// Continues request ids after the journal's, marks never-signed assignments abandoned, and resubmits what was
    /// signed but not seen mined (a node that has it answers "already known"). Call once before serving.
    public func recover() async throws {
        let maximum = try await journal.maximumID()
        state.withLock { $0.nextID = maximum + 1 }
        let abandoned = try await journal.abandonUnsigned()
        if abandoned > 0 {
            logger.notice("journal: assignments that never got a signature were abandoned", metadata: ["journal.count": "\(abandoned)"])
        }
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
        Task {
            if let idempotencyKey {
                // A repeat of a request still in flight waits for the same outcome.
                let joined = state.withLock { state -> Bool in
                    guard let id = state.requestByIdempotencyKey[idempotencyKey] else { return false }
                    state.pending[id]?.completions.append(completion)
                    return true
                }
                if joined { return }
                do {
                    if let record = try await journal.record(idempotencyKey: idempotencyKey) {
                        return completion(Self.result(of: record))
                    }
                } catch {
                    return completion(.failure(.internalError("journal unavailable: \(error)")))
                }
            }
            let transaction: Transaction
            do throws(RPCError) {
                transaction = try await filler.fill(request)
            } catch {
                return completion(.failure(error))
            }
            if request.nonce != nil {
                return await sendWithCallerNonce(transaction, from: request.from, idempotencyKey: idempotencyKey,
                                                 origin: origin, completion: completion)
            }
            let actions = state.withLock { state -> [NonceLane.Action] in
                let id = state.nextID
                state.nextID += 1
                state.pending[id] = Pending(from: request.from, origin: origin, idempotencyKey: idempotencyKey,
                                            completions: [completion])
                if let idempotencyKey { state.requestByIdempotencyKey[idempotencyKey] = id }
                return state.lanes[request.from, default: NonceLane()].enqueue(id, transaction)
            }
            perform(actions, from: request.from)
        }
    }

    private static func result(of record: JournalRecord) -> Result<SignedTransaction, RPCError> {
        switch record.state {
        case .submitted, .mined:
            if let raw = record.raw, let signed = try? SignedTransaction(raw: raw) { return .success(signed) }
            return .failure(.internalError("journal record \(record.id) has no transaction"))
        case .failed:
            return .failure(.server(record.failure ?? "transaction failed"))
        case .assigned, .signed, .abandoned:
            return .failure(.internalError("an earlier request with this idempotency key did not complete; nothing was broadcast by it"))
        }
    }

    /// A caller-chosen nonce bypasses the lane (the caller owns the ordering); a collision with the lane surfaces as
    /// the node's "nonce too low", after which the lane resyncs.
    private func sendWithCallerNonce(_ transaction: Transaction, from: Address, idempotencyKey: String?, origin: UInt64?,
                                     completion: @escaping Completion) async {
        let id = state.withLock { state -> UInt64 in
            defer { state.nextID += 1 }
            return state.nextID
        }
        do {
            try await journal.assigned(id: id, from: from, nonce: transaction.nonce, idempotencyKey: idempotencyKey)
            let signature = try await wallet.sign(digest: transaction.signingHash, from: from)
            let signed = SignedTransaction(transaction: transaction, signature: signature)
            try await journal.signed(id: id, nonce: transaction.nonce, raw: signed.raw, hash: signed.hash)
            switch await sendRaw(signed) {
            case .accepted, .unknown:
                try await journal.submitted(id: id)
                onSubmitted(signed, origin)
                completion(.success(signed))
            case .rejected(let code, let message):
                try await journal.failed(id: id, reason: message)
                completion(.failure(RPCError(code: code, message: message)))
            }
        } catch let error as SignerError {
            try? await journal.failed(id: id, reason: error.description)
            completion(.failure(.internalError("signing failed: \(error.description)")))
        } catch {
            completion(.failure(.internalError("journal unavailable: \(error)")))
        }
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
            // After an earlier attempt with an unknown outcome, "nonce too low" may be our own transaction, mined.
            if case .success(let found) = await node.call(method: "eth_getTransactionByHash", params: [.string(signed.hash.hex)]),
                !found.isNull
            {
                return .accepted
            }
            return .rejected(code: error.code, message: error.message)
        case .failure(let error) where error == NodeError.connectionLost || error == NodeError.timeout
            || error == NodeError.unavailable:
            return .unknown(error)
        case .failure(let error):
            return .rejected(code: error.code, message: error.message)
        }
    }

    private func succeed(_ id: UInt64, _ signed: SignedTransaction) async {
        let pending = state.withLock { state -> Pending? in
            state.submitAttempts.removeValue(forKey: id)
            let pending = state.pending.removeValue(forKey: id)
            if let key = pending?.idempotencyKey { state.requestByIdempotencyKey.removeValue(forKey: key) }
            return pending
        }
        do {
            try await journal.submitted(id: id)
        } catch {
            // The transaction is on its way; the hash is still the truth. Tracking continues from memory.
            logger.error("journal could not record a submission", metadata: ["tx.hash": "\(signed.hash)", "error": "\(error)"])
        }
        onSubmitted(signed, pending?.origin)
        for completion in pending?.completions ?? [] { completion(.success(signed)) }
    }

    private func fail(_ id: UInt64, _ failure: NonceLane.LaneFailure) async {
        let pending = state.withLock { state -> Pending? in
            state.submitAttempts.removeValue(forKey: id)
            let pending = state.pending.removeValue(forKey: id)
            if let key = pending?.idempotencyKey { state.requestByIdempotencyKey.removeValue(forKey: key) }
            return pending
        }
        let error: RPCError
        switch failure {
        case .signing(let signerError): error = .internalError("signing failed, nothing was broadcast: \(signerError.description)")
        case .rejectedByNode(let code, let message): error = RPCError(code: code, message: message)
        case .nodeUnavailable(let detail): error = .internalError("\(detail); nothing was broadcast")
        }
        try? await journal.failed(id: id, reason: error.message)
        for completion in pending?.completions ?? [] { completion(.failure(error)) }
    }

    /// Requests per address not yet answered (for /status).
    public var queueDepths: [Address: Int] {
        state.withLock { state in state.lanes.mapValues(\.pendingCount).filter { $0.value > 0 } }
    }
}
