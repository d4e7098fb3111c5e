import Ethereum
import Foundation
import JSON
import Logging
import ServiceLifecycle
import Signers
import Synchronization

/// Keys in HashiCorp Vault (or OpenBao), in one of two modes:
///
/// - **ethsign** (the default): the kaleido-io ethsign plugin holds the keys and never lets them out. It signs only
///   whole legacy EIP-155 transactions, which it encodes itself, so this backend's `signingForm` is `.transaction`
///   (no messages, no typed data), it tells the filler so (`transactionSupport`), and the wallet checks every raw
///   transaction it returns against the request. The plugin names accounts by address only: accounts carry no public
///   key (`Account.init(address:…)`), which is all the wallet needs to check a signature by recovery.
/// - **kv2**: hex private keys stored in KV version 2 secrets are read into this process and sign digests here, as
///   Web3Signer and EthSigner do with Vault. The keys leave Vault: a warning says so at start.
///
/// Authentication: a token or AppRole; the token is renewed before it expires (lazily by calls, and while idle by
/// this backend's `Service` body), and an AppRole login is repeated when renewal cannot help.
public final class HashiCorpVaultBackend: KeyManagingBackend, Service {
    public enum Mode: String, Sendable, Hashable {
        case ethsign
        case kv2
    }

    public struct Settings: Sendable, Hashable {
        public var address: Address
        public var authentication: VaultAuthentication
        public var mode: Mode = .ethsign
        /// Where the plugin (ethsign) or the KV v2 engine (kv2) is mounted; default `ethereum` or `secret`.
        public var mount: String?
        /// Enterprise / OpenBao namespace (`X-Vault-Namespace`), e.g. `team-a` or `team-a/payments`.
        public var namespace: String?
        public var tls = VaultTLS()
        /// kv2: the secrets' paths under the mount (`ethsign/key-0`), each holding one key.
        public var paths: [String] = []
        /// kv2: the field of each secret's data that holds the hex private key.
        public var field = "privateKey"
        /// ethsign: let the filler turn EIP-1559 requests into legacy transactions (gasPrice = maxFeePerGas).
        public var legacyForDynamicFee = false
        public var retry = RetryPolicy()
        public var requestTimeout: Duration = .seconds(5)
        /// A token is renewed this long before it expires (or after two thirds of its TTL, if sooner).
        public var tokenRenewMargin: Duration = .seconds(300)

        public init(address: Address, authentication: VaultAuthentication) {
            self.address = address
            self.authentication = authentication
        }

        public var effectiveMount: String { mount ?? (mode == .ethsign ? "ethereum" : "secret") }
    }

    /// Vault's address: `https://vault.example.com:8200` (http for a dev server on loopback).
    public struct Address: Sendable, Hashable, CustomStringConvertible {
        /// `scheme://host[:port]`, no path.
        public let origin: String
        let isHTTPS: Bool

        public init?(_ text: String) {
            guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
                scheme == "http" || scheme == "https", let host = components.host, !host.isEmpty,
                components.path.isEmpty || components.path == "/", components.query == nil
            else { return nil }
            isHTTPS = scheme == "https"
            let shownHost = host.contains(":") ? "[\(host)]" : host
            origin = components.port.map { "\(scheme)://\(shownHost):\($0)" } ?? "\(scheme)://\(shownHost)"
        }

        public var description: String { origin }
    }

    public let name: String
    private let settings: Settings
    private let mount: String
    private let client: VaultClient
    private let logger: Logger
    /// ethsign: addresses read once (an account's address never changes).
    private let known = Mutex<[String: Account]>([:])
    /// kv2: the keys read, by address; replaced as a whole by each successful listing.
    private let keys = Mutex<[Ethereum.Address: PrivateKey]>([:])

    public init(name: String, settings: Settings, logger: Logger) {
        self.name = name
        self.settings = settings
        self.logger = logger
        mount = settings.effectiveMount.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        client = VaultClient(
            settings: VaultClient.Settings(
                address: settings.address, namespace: settings.namespace, authentication: settings.authentication,
                tls: settings.tls, retry: settings.retry, timeout: settings.requestTimeout,
                renewMargin: settings.tokenRenewMargin),
            label: name, logger: logger)
        if settings.mode == .kv2 {
            logger.warning(
                "\(Self.keysLeaveVault)",
                metadata: ["signer.backend": "\(name)", "vault.mount": "\(mount)"])
        }
    }

    private static let keysLeaveVault =
        "Vault kv2 mode: private keys leave Vault and are held in this process's memory; use the ethsign plugin to "
        + "keep them in Vault"

    public var signingForm: SigningForm { settings.mode == .ethsign ? .transaction : .digest }

    public var transactionSupport: TransactionSupport {
        settings.mode == .ethsign ? .legacyOnly(dynamicFeeAsLegacy: settings.legacyForDynamicFee) : .all
    }

    /// Keeps the token alive while the gateway is idle, until graceful shutdown.
    public func run() async throws {
        await cancelWhenGracefulShutdown { await self.client.keepTokenFresh() }
    }

    public func accounts() async throws(SignerError) -> [Account] {
        switch settings.mode {
        case .ethsign: try await ethsignAccounts()
        case .kv2: try await kv2Accounts()
        }
    }

    // MARK: ethsign

    /// `LIST <mount>/accounts` (as `GET ?list=true`), then `GET <mount>/accounts/<address>` for each one not yet read.
    private func ethsignAccounts() async throws(SignerError) -> [Account] {
        var accounts: [Account] = []
        for listed in try await listedAddresses() {
            if let account = known.withLock({ $0[listed] }) {
                accounts.append(account)
                continue
            }
            let answer: JSONValue?
            do {
                answer = try await client.call(.GET, "\(mount)/accounts/\(listed)")
            } catch {
                throw signerError(error, doing: "reading account \(listed)", listing: true)
            }
            guard let text = answer?["data"]?["address"]?.stringValue, let address = try? Ethereum.Address(hex: text)
            else { throw .backendUnavailable("\(name): \(mount)/accounts/\(listed) answered without an address") }
            let account = Account(address: address, backend: name, keyReference: address.lowercaseHex)
            known.withLock { $0[listed] = account }
            accounts.append(account)
        }
        return accounts.sorted { $0.address < $1.address }
    }

    /// The plugin's account keys: lower-case 0x addresses. A LIST of nothing is Vault's 404 without errors.
    private func listedAddresses() async throws(SignerError) -> [String] {
        let answer: JSONValue?
        do {
            answer = try await client.call(.GET, "\(mount)/accounts?list=true")
        } catch {
            if case .service(.answer(404, let errors, _)) = error.reason, errors.isEmpty { return [] }
            throw signerError(error, doing: "listing \(mount)/accounts", listing: true)
        }
        return (answer?["data"]?["keys"]?.arrayValue ?? []).compactMap(\.stringValue)
    }

    public func sign(transaction: Transaction, for account: Account) async throws(SignerError) -> [UInt8] {
        guard settings.mode == .ethsign else {
            throw .rejected("\(name) signs digests; the gateway encodes transactions for it")
        }
        let body = try EthsignRequest.body(for: transaction, backend: name)
        let path = "\(mount)/accounts/\(account.address.lowercaseHex)/sign"
        let answer: JSONValue?
        do {
            answer = try await client.call(.POST, path, body: body)
        } catch {
            // The plugin refuses with a 500 and a Go error string. Whether the account is gone is asked of Vault
            // (is it still listed?), not read from the message.
            if case .service(.answer(500, _, _)) = error.reason,
                let listed = try? await listedAddresses(), !listed.contains(account.address.lowercaseHex)
            {
                throw .unknownAccount(
                    "\(account.address.checksummed) (\(name): the ethsign plugin has no such account)")
            }
            throw signerError(error, doing: "signing for \(account.address.checksummed)", listing: false)
        }
        return try EthsignRequest.signedTransaction(from: answer, backend: name)
    }

    public func sign(digest: Bytes32, for account: Account) async throws(SignerError) -> Signature {
        guard let signature = try signNow(digest: digest, for: account) else {
            throw Self.wholeTransactionsOnly(name)
        }
        return signature
    }

    /// kv2 keys are in memory: signatures take microseconds on the caller's thread.
    public func signNow(digest: Bytes32, for account: Account) throws(SignerError) -> Signature? {
        guard settings.mode == .kv2 else { throw Self.wholeTransactionsOnly(name) }
        guard let key = keys.withLock({ $0[account.address] }) else {
            throw .unknownAccount(account.address.checksummed)
        }
        return Secp256k1.sign(digest: digest, with: key)
    }

    private static func wholeTransactionsOnly(_ name: String) -> SignerError {
        .rejected("\(name) (the ethsign plugin) signs only whole transactions; it cannot sign messages or typed data")
    }

    // MARK: Key management (ethsign)

    /// `POST <mount>/accounts`: the plugin generates the key and keeps it.
    public func createAccount(label: String?) async throws(SignerError) -> Account {
        try await ethsignCreate(body: .object(JSONObject()), doing: "creating an account")
    }

    /// `POST <mount>/accounts` with `privateKey`: the plugin stores it (its export path is never called).
    public func importAccount(_ key: PrivateKey, label: String?) async throws(SignerError) -> Account {
        var hex = key.withUnsafeBytes { String(Hex.encode(Array($0)).dropFirst(2)) }
        defer { hex = "" }
        return try await ethsignCreate(body: .object(JSONObject([("privateKey", .string(hex))])), doing: "importing a key")
    }

    /// `DELETE <mount>/accounts/<address>`.
    public func deleteAccount(_ account: Account) async throws(SignerError) {
        try requireEthsign()
        do {
            _ = try await client.call(.DELETE, "\(mount)/accounts/\(account.address.lowercaseHex)")
        } catch {
            throw keyManagementError(error, doing: "deleting \(account.address.checksummed)")
        }
        known.withLock { $0[account.address.lowercaseHex] = nil }
    }

    private func ethsignCreate(body: JSONValue, doing: String) async throws(SignerError) -> Account {
        try requireEthsign()
        let answer: JSONValue?
        do {
            answer = try await client.call(.POST, "\(mount)/accounts", body: body)
        } catch {
            throw keyManagementError(error, doing: doing)
        }
        guard let text = answer?["data"]?["address"]?.stringValue, let address = try? Ethereum.Address(hex: text) else {
            throw .backendUnavailable("\(name): \(doing): \(mount)/accounts answered without an address")
        }
        let account = Account(address: address, backend: name, keyReference: address.lowercaseHex)
        known.withLock { $0[address.lowercaseHex] = account }
        return account
    }

    private func requireEthsign() throws(SignerError) {
        guard settings.mode == .ethsign else {
            throw .keyManagement(
                "\(name) reads keys from configured kv2 paths; write the secret with `vault kv put` and add its path")
        }
    }

    private func keyManagementError(_ error: VaultCallError, doing: String) -> SignerError {
        let failure = signerError(error, doing: doing, listing: false)
        if case .service(let service) = error.reason, service.status == 403 {
            return .keyManagement(
                "\(name): \(doing): permission denied; the token's policy needs update on \(mount)/accounts and "
                    + "delete on \(mount)/accounts/*")
        }
        return failure.isPermanent ? .keyManagement(failure.description) : failure
    }

    // MARK: kv2

    /// `GET <mount>/data/<path>` for each path: `data.data[field]`, 32 bytes of hex (with or without 0x).
    private func kv2Accounts() async throws(SignerError) -> [Account] {
        guard !settings.paths.isEmpty else { throw .configuration("\(name): kv2 mode needs paths (secret paths)") }
        var read: [Ethereum.Address: (key: PrivateKey, account: Account)] = [:]
        for path in settings.paths {
            let trimmed = path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
            let answer: JSONValue?
            do {
                answer = try await client.call(.GET, "\(mount)/data/\(trimmed)")
            } catch {
                throw signerError(error, doing: "reading \(mount)/data/\(trimmed)", listing: true)
            }
            guard let value = answer?["data"]?["data"]?[settings.field]?.stringValue else {
                throw .configuration("\(name): \(mount)/data/\(trimmed) has no field \"\(settings.field)\"")
            }
            let hex = value.hasPrefix("0x") || value.hasPrefix("0X") ? "0x" + value.dropFirst(2) : "0x" + value
            let key: PrivateKey
            do {
                key = try PrivateKey(hex: hex)
            } catch {
                throw .configuration(
                    "\(name): \(mount)/data/\(trimmed).\(settings.field) is not a secp256k1 private key")
            }
            let account = Account(publicKey: key.publicKey, backend: name, keyReference: trimmed)
            read[account.address] = (key, account)
        }
        keys.withLock { $0 = read.mapValues(\.key) }
        return read.values.map(\.account).sorted { $0.address < $1.address }
    }

    // MARK: Errors

    /// A failed call as a `SignerError`: retryable or not, and whose problem (the operator's at listing, the
    /// request's at signing).
    private func signerError(_ error: VaultCallError, doing: String, listing: Bool) -> SignerError {
        let failure: VaultError
        switch error.reason {
        case .token(let error): return error
        case .service(let service): failure = service
        }
        if failure.isRetryable || failure.status.map({ $0 >= 500 && $0 != 500 }) == true {
            return .backendUnavailable("\(name): \(doing): \(failure)")
        }
        if case .configuration(let detail) = failure { return .configuration("\(name): \(detail)") }
        if failure.status == 403 {
            let needed =
                settings.mode == .ethsign
                ? "list on \(mount)/accounts and create, read on \(mount)/accounts/*"
                : "read on \(mount)/data/<path>"
            let detail = "\(name): \(doing): permission denied; the token's policy needs \(needed)"
            return listing ? .configuration(detail) : .rejected(detail)
        }
        if listing, failure.status == 404 {
            return .configuration(
                "\(name): \(doing): not found (is the \(settings.mode.rawValue) mount \(mount) right?)")
        }
        return listing ? .configuration("\(name): \(doing): \(failure)") : .rejected("\(name): \(doing): \(failure)")
    }
}
