import CPKCS11
import Ethereum
import Logging
import NIOPosix
import Signers
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Keys in a PKCS#11 token: AWS CloudHSM (Client SDK 5), SoftHSM2, any HSM with a PKCS#11 module. Private keys
/// never leave the token; the gateway asks it for `CKM_ECDSA` over a 32-byte digest and turns the raw r ‖ s into a
/// canonical signature by recovery (REFERENCE §4).
///
/// Sessions are opened once and reused, key handles are cached (a lookup per signature is what held another signer to
/// about 1 tx/s on CloudHSM), and every blocking C call runs on this backend's own threads, one per session.
public final class PKCS11Backend: KeyManagingBackend {
    public struct Settings: Sendable, Hashable {
        /// The module to `dlopen` (CloudHSM: `/opt/cloudhsm/lib/libcloudhsm_pkcs11.so`).
        public var modulePath: String
        /// The token, by label (slot ids are not stable).
        public var tokenLabel: String
        /// The user PIN, by reference (CloudHSM: `<crypto user>:<password>`).
        public var pin: SecretReference
        /// Which secp256k1 private keys are accounts: `CKA_LABEL` glob patterns (`signer-*`) and hex `CKA_ID`s.
        /// Both empty: every secp256k1 private key on the token.
        public var keyLabels: [String] = []
        public var keyIDs: [[UInt8]] = []
        /// Sessions, and threads: signatures in flight at once.
        public var sessions = 4
        /// How often a transient fault (`CKR_DEVICE_ERROR`, CloudHSM's answer when throttled) is retried.
        public var retries = 4
        public var retryDelay: Duration = .milliseconds(50)

        public init(modulePath: String, tokenLabel: String, pin: SecretReference) {
            self.modulePath = modulePath
            self.tokenLabel = tokenLabel
            self.pin = pin
        }
    }

    /// Where a key is on the token, so that it can be found again after the sessions are reopened.
    private struct Key: Sendable {
        let account: Account
        let id: [UInt8]
        let label: String?
        var handle: CK_OBJECT_HANDLE?
    }

    private struct Sessions {
        var module: PKCS11Module?
        var slot: CK_SLOT_ID?
        var idle: [CK_SESSION_HANDLE] = []
        /// Bumped when the sessions are found dead: sessions of an older generation are closed, not reused.
        var generation = 0
    }

    public let name: String
    private let settings: Settings
    private let logger: Logger
    private let threads: NIOThreadPool
    private let sessions = Mutex(Sessions())
    private let keys = Mutex<[Address: Key]>([:])

    public init(name: String, settings: Settings, logger: Logger) {
        self.name = name
        self.settings = settings
        self.logger = logger
        self.threads = NIOThreadPool(numberOfThreads: max(1, settings.sessions))
        threads.start()
    }

    deinit {
        threads.shutdownGracefully { _ in }
        let idle = sessions.withLock { state in (state.module, state.idle) }
        for session in idle.1 { idle.0?.closeSession(session) }
    }

    // MARK: Accounts

    public func accounts() async throws(SignerError) -> [Account] {
        let found = try await withSession { module, session throws(PKCS11Error) in
            try self.findKeys(module, session)
        }
        keys.withLock { keys in
            keys = Dictionary(found.map { ($0.account.address, $0) }, uniquingKeysWith: { first, _ in first })
        }
        return found.map(\.account).sorted { $0.address < $1.address }
    }

    private func findKeys(_ module: PKCS11Module, _ session: CK_SESSION_HANDLE) throws(PKCS11Error) -> [Key] {
        let privateKeys = try module.findObjects(
            session,
            [
                .ulong(CK_ATTRIBUTE_TYPE(CKA_CLASS), CK_ULONG(CKO_PRIVATE_KEY)),
                .ulong(CK_ATTRIBUTE_TYPE(CKA_KEY_TYPE), CK_ULONG(CKK_EC)),
            ])
        var found: [Key] = []
        for handle in privateKeys {
            guard let parameters = try module.attribute(session, handle, CK_ATTRIBUTE_TYPE(CKA_EC_PARAMS)),
                PublicKeyEncodings.isSecp256k1(parameters: parameters)
            else { continue }
            let id = try module.attribute(session, handle, CK_ATTRIBUTE_TYPE(CKA_ID)) ?? []
            let label = try module.attribute(session, handle, CK_ATTRIBUTE_TYPE(CKA_LABEL)).map {
                String(decoding: $0, as: UTF8.self)
            }
            guard isSelected(id: id, label: label) else { continue }
            let reference = label.map { "label:\($0)" } ?? "id:\(Hex.encode(id))"
            guard let point = try publicPoint(module, session, privateKey: handle, id: id, label: label) else {
                logger.warning(
                    "skipping PKCS#11 key without a public key object",
                    metadata: ["signer.backend": "\(name)", "pkcs11.key": "\(reference)"])
                continue
            }
            do {
                let publicKey = try PublicKeyEncodings.publicKey(ecPoint: point)
                let account = Account(publicKey: publicKey, backend: name, keyReference: reference)
                found.append(Key(account: account, id: id, label: label, handle: handle))
            } catch {
                logger.warning(
                    "skipping PKCS#11 key", metadata: ["signer.backend": "\(name)", "pkcs11.key": "\(reference)",
                        "error": "\(error)"])
            }
        }
        return found
    }

    private func isSelected(id: [UInt8], label: String?) -> Bool {
        if settings.keyLabels.isEmpty && settings.keyIDs.isEmpty { return true }
        if settings.keyIDs.contains(id) { return true }
        guard let label else { return false }
        return settings.keyLabels.contains { fnmatch($0, label, 0) == 0 }
    }

    /// The public point: on the private key when the token keeps it there, else on the public key object with the
    /// same `CKA_ID` (or label, when the key has no id).
    private func publicPoint(
        _ module: PKCS11Module, _ session: CK_SESSION_HANDLE, privateKey: CK_OBJECT_HANDLE, id: [UInt8],
        label: String?
    ) throws(PKCS11Error) -> [UInt8]? {
        if let point = try module.attribute(session, privateKey, CK_ATTRIBUTE_TYPE(CKA_EC_POINT)) { return point }
        var template: [PKCS11Attribute] = [.ulong(CK_ATTRIBUTE_TYPE(CKA_CLASS), CK_ULONG(CKO_PUBLIC_KEY))]
        if !id.isEmpty {
            template.append(.bytes(CK_ATTRIBUTE_TYPE(CKA_ID), id))
        } else if let label {
            template.append(.bytes(CK_ATTRIBUTE_TYPE(CKA_LABEL), Array(label.utf8)))
        } else {
            return nil
        }
        guard let publicKey = try module.findObjects(session, template).first else { return nil }
        return try module.attribute(session, publicKey, CK_ATTRIBUTE_TYPE(CKA_EC_POINT))
    }

    // MARK: Key management

    /// `C_GenerateKeyPair` on the token: a secp256k1 pair whose private half is sensitive, never extractable and
    /// used only to sign. It is labelled `label` (default `signer-` and 8 random hex digits) with a random 16-byte
    /// `CKA_ID`, and must be one the configuration selects (`keyLabels`, `keyIds`), or it would not be listed again.
    public func createAccount(label: String?) async throws(SignerError) -> Account {
        var random = SystemRandomNumberGenerator()
        let id = (0..<16).map { _ in UInt8.random(in: .min ... .max, using: &random) }
        let label = label ?? "signer-\(String(Hex.encode(Array(id.prefix(4))).dropFirst(2)))"
        guard !label.isEmpty, label.utf8.count <= 128 else {
            throw .keyManagement("a PKCS#11 label is 1 to 128 bytes")
        }
        guard isSelected(id: id, label: label) else {
            throw .keyManagement(
                "\(name) uses only keys whose label matches \(settings.keyLabels.joined(separator: ", ")); give a "
                    + "label that does")
        }
        let common: [PKCS11Attribute] = [
            .bool(CK_ATTRIBUTE_TYPE(CKA_TOKEN), true), .bytes(CK_ATTRIBUTE_TYPE(CKA_ID), id),
            .bytes(CK_ATTRIBUTE_TYPE(CKA_LABEL), Array(label.utf8)),
        ]
        let publicTemplate =
            common + [
                .bytes(CK_ATTRIBUTE_TYPE(CKA_EC_PARAMS), PublicKeyEncodings.secp256k1Parameters), .bool(CK_ATTRIBUTE_TYPE(CKA_VERIFY), true),
            ]
        let privateTemplate =
            common + [
                .bool(CK_ATTRIBUTE_TYPE(CKA_PRIVATE), true), .bool(CK_ATTRIBUTE_TYPE(CKA_SENSITIVE), true),
                .bool(CK_ATTRIBUTE_TYPE(CKA_EXTRACTABLE), false), .bool(CK_ATTRIBUTE_TYPE(CKA_SIGN), true),
                .bool(CK_ATTRIBUTE_TYPE(CKA_DERIVE), false),
            ]
        let created: (point: [UInt8], handle: CK_OBJECT_HANDLE)
        do throws(SignerError) {
            created = try await withSession { module, session throws(PKCS11Error) in
                let (publicKey, privateKey) = try module.generateKeyPair(
                    session, publicTemplate: publicTemplate, privateTemplate: privateTemplate)
                guard let point = try module.attribute(session, publicKey, CK_ATTRIBUTE_TYPE(CKA_EC_POINT)) else {
                    throw PKCS11Error(function: "C_GetAttributeValue(CKA_EC_POINT)", code: CK_RV(CKR_GENERAL_ERROR))
                }
                return (point, privateKey)
            }
        } catch {
            throw error.isPermanent ? .keyManagement("\(error)") : error
        }
        let account = Account(
            publicKey: try PublicKeyEncodings.publicKey(ecPoint: created.point), backend: name,
            keyReference: "label:\(label)")
        keys.withLock { $0[account.address] = Key(account: account, id: id, label: label, handle: created.handle) }
        return account
    }

    /// `C_DestroyObject` on the private key and on its public key object.
    public func deleteAccount(_ account: Account) async throws(SignerError) {
        guard let key = keys.withLock({ $0[account.address] }) else {
            throw .unknownAccount(account.address.checksummed)
        }
        do throws(SignerError) {
            try await withSession { module, session throws(PKCS11Error) in
                let privateKey = try self.handle(for: account.address, module, session)
                var template: [PKCS11Attribute] = [.ulong(CK_ATTRIBUTE_TYPE(CKA_CLASS), CK_ULONG(CKO_PUBLIC_KEY))]
                if !key.id.isEmpty {
                    template.append(.bytes(CK_ATTRIBUTE_TYPE(CKA_ID), key.id))
                } else if let label = key.label {
                    template.append(.bytes(CK_ATTRIBUTE_TYPE(CKA_LABEL), Array(label.utf8)))
                }
                let publicKeys = template.count > 1 ? try module.findObjects(session, template) : []
                try module.destroyObject(session, privateKey)
                for publicKey in publicKeys { try? module.destroyObject(session, publicKey) }
            }
        } catch {
            throw error.isPermanent ? .keyManagement("\(error)") : error
        }
        _ = keys.withLock { $0.removeValue(forKey: account.address) }
    }

    // MARK: Signing

    public func sign(digest: Bytes32, for account: Account) async throws(SignerError) -> Signature {
        guard keys.withLock({ $0[account.address] }) != nil else { throw .unknownAccount(account.address.checksummed) }
        let publicKey = try account.requirePublicKey()
        let raw = try await withSession { module, session throws(PKCS11Error) in
            let handle = try self.handle(for: account.address, module, session)
            return try module.signECDSA(session, key: handle, digest: digest)
        }
        do {
            let (r, s) = try Secp256k1.parseCompact(raw)
            return try Secp256k1.signature(r: r, s: s, digest: digest, publicKey: publicKey)
        } catch {
            throw .invalidSignature("\(name): \(raw.count)-byte CKM_ECDSA answer: \(error)")
        }
    }

    /// The cached handle, or the key found again by id or label (after the sessions were reopened).
    private func handle(for address: Address, _ module: PKCS11Module, _ session: CK_SESSION_HANDLE)
        throws(PKCS11Error) -> CK_OBJECT_HANDLE
    {
        guard let key = keys.withLock({ $0[address] }) else {
            throw PKCS11Error(function: "find key", code: CK_RV(CKR_KEY_HANDLE_INVALID))
        }
        if let handle = key.handle { return handle }
        var template: [PKCS11Attribute] = [.ulong(CK_ATTRIBUTE_TYPE(CKA_CLASS), CK_ULONG(CKO_PRIVATE_KEY))]
        if !key.id.isEmpty {
            template.append(.bytes(CK_ATTRIBUTE_TYPE(CKA_ID), key.id))
        } else if let label = key.label {
            template.append(.bytes(CK_ATTRIBUTE_TYPE(CKA_LABEL), Array(label.utf8)))
        }
        guard let handle = try module.findObjects(session, template).first else {
            throw PKCS11Error(function: "C_FindObjects", code: CK_RV(CKR_KEY_HANDLE_INVALID))
        }
        keys.withLock { $0[address]?.handle = handle }
        return handle
    }

    // MARK: Sessions

    /// Runs `body` on one of this backend's threads with a logged-in session, retrying transient faults with
    /// backoff and reopening the sessions (and finding the keys again) when the token has lost them.
    private func withSession<T: Sendable>(
        _ body: @escaping @Sendable (PKCS11Module, CK_SESSION_HANDLE) throws(PKCS11Error) -> T
    ) async throws(SignerError) -> T {
        var attempt = 0
        while true {
            // The generation of the sessions the fault came from: one reopening serves every call that failed on
            // them, instead of each concurrent failure reopening again under the others' feet.
            let outcome: Result<T, SessionFault>
            do {
                outcome = try await threads.runIfActive { () throws(SignerError) -> Result<T, SessionFault> in
                    let (module, session, generation): (PKCS11Module, CK_SESSION_HANDLE, Int)
                    switch try self.checkOut() {
                    case .failure(let fault): return .failure(fault)
                    case .success(let checkedOut): (module, session, generation) = checkedOut
                    }
                    do throws(PKCS11Error) {
                        let value = try body(module, session)
                        self.checkIn(session, generation: generation, healthy: true)
                        return .success(value)
                    } catch {
                        self.checkIn(session, generation: generation, healthy: error.disposition != .reopen)
                        return .failure(SessionFault(error: error, generation: generation))
                    }
                }
            } catch let error as SignerError {
                throw error
            } catch {
                throw .backendUnavailable("\(name): its threads are shut down")
            }
            switch outcome {
            case .success(let value):
                return value
            case .failure(let fault):
                let error = fault.error
                attempt += 1
                switch error.disposition {
                case .permanent:
                    throw .rejected("\(name): \(error)")
                case .reopen where attempt <= settings.retries:
                    logger.warning(
                        "PKCS#11 sessions lost; reopening",
                        metadata: ["signer.backend": "\(name)", "error": "\(error)"])
                    await reopen(
                        reinitialize: error.code == CK_RV(CKR_CRYPTOKI_NOT_INITIALIZED), after: fault.generation)
                case .retry where attempt <= settings.retries:
                    let delay = settings.retryDelay * (1 << min(attempt - 1, 6))
                    try? await Task.sleep(for: delay * Double.random(in: 0.5...1.0))
                default:
                    throw .backendUnavailable("\(name): \(error) (after \(attempt) tries)")
                }
            }
        }
    }

    /// A session of the current generation: an idle one, or a new one logged in. Loads the module and finds the
    /// token on first use, so that a missing module or token is an error naming this backend. Throws what only the
    /// operator can fix; returns a transient fault (device error, module finalised) for the retry loop.
    private func checkOut() throws(SignerError) -> Result<(PKCS11Module, CK_SESSION_HANDLE, Int), SessionFault> {
        let (module, slot, idle, generation) = try sessions.withLock { state throws(SignerError) in
            if state.module == nil { state.module = try PKCS11Module.load(path: settings.modulePath) }
            return (state.module!, state.slot, state.idle.popLast(), state.generation)
        }
        if let idle { return .success((module, idle, generation)) }
        return try openSession(module, slot, generation).map { ($0, $1, generation) }
    }

    /// Opens and logs in a new session of `generation`.
    private func openSession(
        _ module: PKCS11Module, _ slot: CK_SLOT_ID?, _ generation: Int
    ) throws(SignerError) -> Result<(PKCS11Module, CK_SESSION_HANDLE), SessionFault> {
        let found: CK_SLOT_ID
        var listing = Result<CK_SLOT_ID?, PKCS11Error>.success(slot)
        if slot == nil { listing = Result { () throws(PKCS11Error) in try findSlot(module) } }
        switch listing {
        case .success(let listed?):
            found = listed
        case .success(nil):
            // The label is wrong, or the token is gone: the operator's to fix.
            throw .configuration(
                "\(name): no token labelled \"\(settings.tokenLabel)\" (tokens: "
                    + module.tokenLabels().map { "\"\($0)\"" }.joined(separator: ", ") + ")")
        case .failure(let error):
            return try openingFault(error, generation)
        }
        let session: CK_SESSION_HANDLE
        do throws(PKCS11Error) {
            session = try module.openSession(slot: found)
        } catch {
            return try openingFault(error, generation)
        }
        var pin = try settings.pin.resolve()
        defer { for index in pin.indices { pin[index] = 0 } }
        do throws(PKCS11Error) {
            try module.login(session, pin: pin)
        } catch {
            module.closeSession(session)
            let pinCodes = [CKR_PIN_INCORRECT, CKR_PIN_LEN_RANGE, CKR_PIN_LOCKED, CKR_USER_PIN_NOT_INITIALIZED]
            if pinCodes.map({ CK_RV($0) }).contains(error.code) {
                throw .configuration("\(name): the PIN was refused (\(error.name))")
            }
            return try openingFault(error, generation)
        }
        return .success((module, session))
    }

    /// A fault while opening a session: thrown when only the operator can fix it, else returned for the retry loop.
    private func openingFault<Value>(
        _ error: PKCS11Error, _ generation: Int
    ) throws(SignerError) -> Result<Value, SessionFault> {
        guard error.disposition != .permanent else { throw .configuration("\(name): \(error)") }
        return .failure(SessionFault(error: error, generation: generation))
    }

    /// The token's slot, or nil when no token has the label. A module may rescan its tokens on every listing
    /// (SoftHSM reads its token directory; hot-plug HSMs), so a token briefly missing from one listing is looked
    /// for twice more before it counts as absent.
    private func findSlot(_ module: PKCS11Module) throws(PKCS11Error) -> CK_SLOT_ID? {
        for pass in 0..<3 {
            if pass > 0 { usleep(10_000) }  // on this backend's own threads, never the cooperative pool
            if let slot = try module.slot(tokenLabel: settings.tokenLabel) {
                sessions.withLock { $0.slot = slot }
                return slot
            }
        }
        return nil
    }

    private func checkIn(_ session: CK_SESSION_HANDLE, generation: Int, healthy: Bool) {
        let module = sessions.withLock { state -> PKCS11Module? in
            guard healthy, generation == state.generation else { return state.module }
            state.idle.append(session)
            return nil
        }
        module?.closeSession(session)
    }

    /// Forgets every session and cached handle: the next call opens, logs in and finds the keys afresh. A module
    /// that was finalised under us is initialised again. The C calls run on this backend's threads.
    private func reopen(reinitialize: Bool, after failed: Int) async {
        let reopening = sessions.withLock { state -> (PKCS11Module?, [CK_SESSION_HANDLE])? in
            // Sessions of a newer generation were opened after this fault: that reopening already happened.
            guard state.generation == failed else { return nil }
            state.generation += 1
            state.slot = nil
            defer { state.idle = [] }
            return (state.module, state.idle)
        }
        guard let (module, idle) = reopening else { return }
        keys.withLock { keys in
            for address in keys.keys { keys[address]?.handle = nil }
        }
        guard let module else { return }
        try? await threads.runIfActive {
            for session in idle { module.closeSession(session) }
            if reinitialize { try? module.initialize() }
        }
    }
}

/// A PKCS#11 fault, with the generation of the sessions it happened on.
private struct SessionFault: Error {
    let error: PKCS11Error
    let generation: Int
}
