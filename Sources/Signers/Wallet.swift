import Ethereum
import Logging
import ServiceLifecycle
import Synchronization

/// The gateway's accounts: address → the backend that holds the key. Several backends at once; refreshed on a
/// timer (as a `Service`) and by `refresh()`. Addresses are compared as bytes.
///
/// Every remote signature passes through here: at most `maximumConcurrentSignatures` per backend at once, each
/// bounded by `signTimeout`, and each verified by recovery before anyone uses it.
public final class Wallet: Service, Sendable {
    public struct Settings: Sendable, Hashable {
        /// A backend call that has not answered after this long fails as "backend unavailable" (retryable).
        public var signTimeout: Duration = .seconds(10)
        /// Signatures one backend may be computing at once; more wait their turn.
        public var maximumConcurrentSignatures = 64
        public var refreshInterval: Duration = .seconds(300)

        public init() {}
    }

    private let backends: [any KeyBackend]
    private let settings: Settings
    private let logger: Logger
    private let accountsByAddress = Mutex<[Address: (account: Account, backend: any KeyBackend)]>([:])
    private let slots: [String: SigningSlots]
    private let refreshed = Atomic<Bool>(false)
    private let refreshWaiters = Mutex<[CheckedContinuation<Void, Never>]?>([])
    /// Each backend's last listing failure (cleared when it lists again), for the operator.
    private let listingErrors = Mutex<[String: String]>([:])
    /// Keys created and withdrawn by the administrator, which a listing running at the same time may not reflect.
    private let keyChanges = Mutex(KeyChanges())

    private struct KeyChanges {
        var generation = 0
        var created: [Address: (entry: (account: Account, backend: any KeyBackend), generation: Int)] = [:]
        var withdrawn: Set<Address> = []
    }

    /// Told of every backend call as it ends: the backend, how long it took in its slot, whether it failed.
    public typealias SignatureObserver = @Sendable (_ backend: String, _ duration: Duration, _ failed: Bool) -> Void

    private let observer: SignatureObserver?

    public init(
        backends: [any KeyBackend], settings: Settings = Settings(), logger: Logger,
        observer: SignatureObserver? = nil
    ) {
        self.observer = observer
        self.backends = backends
        self.settings = settings
        self.logger = logger
        var slots: [String: SigningSlots] = [:]
        for backend in backends { slots[backend.name] = SigningSlots(capacity: settings.maximumConcurrentSignatures) }
        self.slots = slots
    }

    /// Whether every backend has been asked for its accounts at least once (readiness).
    public var hasRefreshed: Bool { refreshed.load(ordering: .acquiring) }

    /// Returns once the first refresh is done: a send that arrives while the gateway starts must not be refused as
    /// "not an account" only because the backends have not been asked yet.
    public func waitUntilRefreshed() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let waiting = refreshWaiters.withLock { waiters -> Bool in
                guard waiters != nil else { return false }
                waiters!.append(continuation)
                return true
            }
            if !waiting { continuation.resume() }
        }
    }

    /// Lists every backend's accounts. A backend that fails keeps its previous accounts (an outage must not make
    /// addresses vanish mid-flight). Returns what the operator must fix: a backend's configuration error (a wrong
    /// PIN, an unknown key) or an address two backends hold (which one would sign is not a choice to make silently;
    /// the first keeps it until the configuration is fixed).
    @discardableResult
    public func refresh() async -> [SignerError] {
        let started = keyChanges.withLock { $0.generation }
        var fresh: [Address: (account: Account, backend: any KeyBackend)] = [:]
        var failed: Set<String> = []
        var problems: [SignerError] = []
        for backend in backends {
            do {
                for account in try await backend.accounts() {
                    if let holder = fresh[account.address] {
                        problems.append(
                            .configuration(
                                "address \(account.address.checksummed) is held by both \(holder.backend.name) "
                                    + "and \(backend.name); remove the key from one of them"))
                        continue
                    }
                    fresh[account.address] = (account, backend)
                }
                listingErrors.withLock { $0[backend.name] = nil }
            } catch {
                listingErrors.withLock { $0[backend.name] = error.description }
                failed.insert(backend.name)
                if error.isConfiguration { problems.append(error) }
                logger.warning(
                    "cannot list accounts", metadata: ["signer.backend": "\(backend.name)", "error": "\(error)"])
            }
        }
        keyChanges.withLock { changes in
            // A key created after this listing began may be missing from it; one withdrawn for deletion must not
            // come back.
            changes.created = changes.created.filter { $0.value.generation > started }
            for (address, created) in changes.created where fresh[address] == nil { fresh[address] = created.entry }
            for address in changes.withdrawn { fresh[address] = nil }
            accountsByAddress.withLock { current in
                for (address, entry) in current where failed.contains(entry.account.backend) && fresh[address] == nil {
                    if !changes.withdrawn.contains(address) { fresh[address] = entry }
                }
                current = fresh
            }
        }
        refreshed.store(true, ordering: .releasing)
        // `nil` from now on: later waiters return at once.
        for waiter in refreshWaiters.withLock({ $0.take() }) ?? [] { waiter.resume() }
        return problems
    }

    public var addresses: [Address] { accountsByAddress.withLock { $0.keys.sorted() } }

    /// One backend as the operator sees it: its accounts now, how it signs, and why its last listing failed.
    public struct BackendSummary: Sendable, Hashable {
        public let name: String
        public let signingForm: SigningForm
        public let addresses: [Address]
        public let lastError: String?
    }

    public var backendSummaries: [BackendSummary] {
        let accounts = accountsByAddress.withLock { Array($0.values.map(\.account)) }
        let errors = listingErrors.withLock { $0 }
        return backends.map { backend in
            BackendSummary(
                name: backend.name, signingForm: backend.signingForm,
                addresses: accounts.filter { $0.backend == backend.name }.map(\.address).sorted(),
                lastError: errors[backend.name])
        }
    }

    public func account(for address: Address) -> Account? {
        accountsByAddress.withLock { $0[address]?.account }
    }

    /// Signs with the backend that holds `address`: waits for one of the backend's slots, gives up after
    /// `signTimeout` (a hung HSM must not hold a lane's head for ever), and verifies the signature by recovery.
    public func sign(digest: Bytes32, from address: Address) async throws(SignerError) -> Signature {
        guard let entry = accountsByAddress.withLock({ $0[address] }) else {
            throw .unknownAccount(address.checksummed)
        }
        guard entry.backend.signingForm == .digest else { throw Self.signsOnlyTransactions(entry.backend.name) }
        let signature = try await withSlot(of: entry.backend) { () async throws(SignerError) -> Signature in
            try await entry.backend.sign(digest: digest, for: entry.account)
        }
        try Self.verify(signature, digest: digest, account: entry.account)
        return signature
    }

    /// A transaction signed by the backend that holds `address`, in the form that backend signs: the digest of the
    /// encoding made here, or the whole transaction encoded by the backend, which is used only if it decodes to
    /// exactly the requested fields and recovers to the account (a backend must not change a recipient, a value or
    /// a nonce, whatever its reason).
    public func sign(transaction: Transaction, from address: Address) async throws(SignerError) -> SignedTransaction {
        guard let entry = accountsByAddress.withLock({ $0[address] }) else {
            throw .unknownAccount(address.checksummed)
        }
        guard entry.backend.signingForm == .transaction else {
            return SignedTransaction(
                transaction: transaction, signature: try await sign(digest: transaction.signingHash, from: address))
        }
        let raw = try await withSlot(of: entry.backend) { () async throws(SignerError) -> [UInt8] in
            try await entry.backend.sign(transaction: transaction, for: entry.account)
        }
        return try Self.verify(raw: raw, transaction: transaction, account: entry.account)
    }

    /// The backend's raw transaction, decoded and held to the request.
    static func verify(raw: [UInt8], transaction: Transaction, account: Account) throws(SignerError)
        -> SignedTransaction
    {
        let signed: SignedTransaction
        do {
            signed = try SignedTransaction(raw: raw)
        } catch {
            throw .invalidSignature("its transaction does not decode (\(error))")
        }
        guard signed.transaction == transaction else {
            throw .invalidSignature(
                "it signed other fields than requested: \(Self.summary(signed.transaction)), not "
                    + Self.summary(transaction))
        }
        try verify(signed.signature, digest: transaction.signingHash, account: account)
        return signed
    }

    static func signsOnlyTransactions(_ backend: String) -> SignerError {
        .rejected("\(backend) signs only whole transactions; it cannot sign messages or typed data")
    }

    /// The fields a person checks first, for the error message.
    private static func summary(_ transaction: Transaction) -> String {
        "chain \(transaction.chainId.map(String.init) ?? "none") nonce \(transaction.nonce) to "
            + "\(transaction.to?.checksummed ?? "(create)") value \(transaction.value) gas \(transaction.gas)"
    }

    /// Whether the account's backend signs whole transactions only (and so cannot sign messages).
    public func signsWholeTransactions(_ address: Address) -> Bool {
        accountsByAddress.withLock { $0[address]?.backend.signingForm == .transaction }
    }

    /// The envelopes the account's backend can sign (all, for an address no backend holds: the pipeline refuses that
    /// address elsewhere, with its own message).
    public func transactionSupport(_ address: Address) -> TransactionSupport {
        accountsByAddress.withLock { $0[address]?.backend.transactionSupport ?? .all }
    }

    /// A backend's signature is used only if it recovers to the account: a misconfigured key reference, a wrong
    /// recovery id or a corrupted answer must never become a transaction from someone else.
    static func verify(_ signature: Signature, digest: Bytes32, account: Account) throws(SignerError) {
        let recovered: Address
        do {
            recovered = try Secp256k1.recoverAddress(digest: digest, signature: signature)
        } catch {
            throw .invalidSignature("it does not recover to any key")
        }
        guard recovered == account.address else {
            throw .invalidSignature("it recovers to \(recovered.checksummed), not to \(account.address.checksummed)")
        }
    }

    /// One call to `backend` in one of its slots (waiting its turn), given up after `signTimeout`: a hung HSM must
    /// not hold a lane's head for ever.
    private func withSlot<Value: Sendable>(
        of backend: any KeyBackend, _ body: @escaping @Sendable () async throws(SignerError) -> Value
    ) async throws(SignerError) -> Value {
        try await withTimeout(settings.signTimeout, backend: backend.name) { () async throws(SignerError) -> Value in
            await self.slots[backend.name]?.acquire()
            defer { self.slots[backend.name]?.release() }
            guard let observer = self.observer else { return try await body() }
            let start = ContinuousClock.now
            do throws(SignerError) {
                let value = try await body()
                observer(backend.name, .now - start, false)
                return value
            } catch {
                observer(backend.name, .now - start, true)
                throw error
            }
        }
    }

    /// Runs `body`, or fails with "backend unavailable" once `timeout` has passed. The call itself is left to finish
    /// in the background (a blocking backend call cannot be interrupted); its slot stays taken until it does.
    private func withTimeout<Value: Sendable>(
        _ timeout: Duration, backend: String, _ body: @escaping @Sendable () async throws(SignerError) -> Value
    ) async throws(SignerError) -> Value {
        let race = SignatureRace<Value>()
        let result = await withCheckedContinuation { (continuation: SignatureRace<Value>.Waiter) in
            race.state.withLock { $0.waiter = continuation }
            let work = Task {
                let result: Result<Value, SignerError>
                do throws(SignerError) { result = .success(try await body()) } catch { result = .failure(error) }
                let (waiter, timer) = race.state.withLock { state in (state.waiter.take(), state.timer.take()) }
                timer?.cancel()
                waiter?.resume(returning: result)
            }
            let timer = Task {
                guard (try? await Task.sleep(for: timeout)) != nil else { return }
                guard let waiter = race.state.withLock({ $0.waiter.take() }) else { return }
                work.cancel()
                waiter.resume(returning: .failure(.backendUnavailable("\(backend) did not answer within \(timeout)")))
            }
            let finished = race.state.withLock { state -> Bool in
                guard state.waiter != nil else { return true }
                state.timer = timer
                return false
            }
            if finished { timer.cancel() }
        }
        return try result.get()
    }

    /// A signature without suspending, when the account's backend can make one on this thread; `nil` otherwise.
    public func signNow(digest: Bytes32, from address: Address) throws(SignerError) -> Signature? {
        guard let entry = accountsByAddress.withLock({ $0[address] }) else {
            throw .unknownAccount(address.checksummed)
        }
        guard entry.backend.signingForm == .digest else { throw Self.signsOnlyTransactions(entry.backend.name) }
        return try entry.backend.signNow(digest: digest, for: entry.account)
    }

    // MARK: Key management

    /// An account taken out of the wallet for a deletion: no new request can use it while the caller decides.
    public struct WithdrawnAccount: Sendable {
        public let account: Account
        fileprivate let backend: any KeyBackend
    }

    /// A new key in the backend named `backend`; its account is usable at once.
    public func createAccount(backend name: String, label: String?) async throws(SignerError) -> Account {
        let backend = try managingBackend(name)
        return try add(try await backend.createAccount(label: label), of: backend)
    }

    /// `key` put into the backend named `backend`, unless the wallet already holds its address (anywhere).
    public func importAccount(_ key: PrivateKey, backend name: String, label: String?) async throws(SignerError)
        -> Account
    {
        let backend = try managingBackend(name)
        if let holder = account(for: key.address) {
            throw .keyManagement("\(key.address.checksummed) is already held by \(holder.backend)")
        }
        return try add(try await backend.importAccount(key, label: label), of: backend)
    }

    /// Takes `address` out of the wallet (sends from it now fail as unknown) for `delete` or `restore`.
    public func withdraw(_ address: Address) throws(SignerError) -> WithdrawnAccount {
        let entry = keyChanges.withLock { changes in
            accountsByAddress.withLock { accounts in
                let entry = accounts.removeValue(forKey: address)
                if entry != nil {
                    changes.withdrawn.insert(address)
                    changes.created[address] = nil
                }
                return entry
            }
        }
        guard let entry else { throw .unknownAccount(address.checksummed) }
        guard entry.backend is any KeyManagingBackend else {
            restore(WithdrawnAccount(account: entry.account, backend: entry.backend))
            throw Self.cannotManage(entry.backend.name)
        }
        return WithdrawnAccount(account: entry.account, backend: entry.backend)
    }

    /// Puts a withdrawn account back, as it was.
    public func restore(_ withdrawn: WithdrawnAccount) {
        keyChanges.withLock { changes in
            changes.withdrawn.remove(withdrawn.account.address)
            accountsByAddress.withLock { $0[withdrawn.account.address] = (withdrawn.account, withdrawn.backend) }
        }
    }

    /// Deletes a withdrawn account's key in its backend; if the backend refuses, the account is restored.
    public func delete(_ withdrawn: WithdrawnAccount) async throws(SignerError) {
        do throws(SignerError) {
            try await (withdrawn.backend as! any KeyManagingBackend).deleteAccount(withdrawn.account)
        } catch {
            restore(withdrawn)
            throw error
        }
        _ = keyChanges.withLock { $0.withdrawn.remove(withdrawn.account.address) }
    }

    private func managingBackend(_ name: String) throws(SignerError) -> any KeyManagingBackend {
        guard let backend = backends.first(where: { $0.name == name }) else {
            throw .keyManagement(
                "no key backend is named \(name); the backends are \(backends.map(\.name).joined(separator: ", "))")
        }
        guard let managing = backend as? any KeyManagingBackend else { throw Self.cannotManage(name) }
        return managing
    }

    private static func cannotManage(_ backend: String) -> SignerError {
        .keyManagement("\(backend) does not manage keys through the gateway")
    }

    private func add(_ account: Account, of backend: any KeyBackend) throws(SignerError) -> Account {
        try keyChanges.withLock { changes throws(SignerError) in
            try accountsByAddress.withLock { accounts throws(SignerError) in
                if let holder = accounts[account.address], holder.backend.name != backend.name {
                    throw .keyManagement(
                        "\(backend.name) made \(account.address.checksummed), which \(holder.backend.name) already "
                            + "holds; remove the key from one of them")
                }
                accounts[account.address] = (account, backend)
            }
            changes.generation += 1
            changes.created[account.address] = ((account, backend), changes.generation)
            changes.withdrawn.remove(account.address)
        }
        return account
    }

    /// The first refresh decides whether the gateway may start: a configuration problem stops it with a message
    /// naming the backend (better than running without the keys). Later problems are logged; an outage is not one.
    public func run() async throws {
        if let problem = await refresh().first { throw problem }
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.settings.refreshInterval) }
            guard !Task.isCancelled && !Task.isShuttingDownGracefully else { break }
            await refresh()
        }
    }
}

/// A signature racing its timeout: whoever takes the waiter first answers; the work cancels the timer so that no
/// sleeping task outlives a signature.
private final class SignatureRace<Value: Sendable>: Sendable {
    typealias Waiter = CheckedContinuation<Result<Value, SignerError>, Never>
    struct State {
        var waiter: Waiter?
        var timer: Task<Void, Never>?
    }
    let state = Mutex(State())
}
