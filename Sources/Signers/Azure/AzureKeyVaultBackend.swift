import Ethereum
import Foundation
import JSON
import Logging
import ServiceLifecycle
import Signers
import Synchronization

/// Keys in Azure Key Vault (`kty` EC or EC-HSM, `crv` P-256K). The private key never leaves the vault: the gateway
/// sends the 32-byte digest (`ES256K`) and turns the raw r ‖ s into a canonical signature by recovery (REFERENCE
/// §4: Key Vault does not normalise s).
///
/// Tokens come from Entra ID (client secret or managed identity) and are cached, refreshed before they expire: lazily
/// by any call that finds the token in its last minutes, and while idle by this backend's `Service` body.
public final class AzureKeyVaultBackend: KeyManagingBackend, Service {
    public struct Settings: Sendable, Hashable {
        public var vault: VaultURL
        public var authentication: AzureAuthentication
        /// `name` (its current version, as found at each refresh) or `name/version` (pinned). Empty: every P-256K
        /// key the vault lists, each at its current version.
        public var keys: [String] = []
        public var apiVersion = "7.4"
        /// The `kty` of keys made by `signer_createAccount`: `EC` (software-protected, any tier) or `EC-HSM`
        /// (HSM-protected, the premium tier).
        public var newKeyType = "EC"
        /// The resource tokens are for; a challenge may name the vault's own (sovereign clouds).
        public var resource = "https://vault.azure.net"
        /// A PEM CA bundle to trust instead of the system's, for the vault and the authority (a TLS-inspecting proxy,
        /// a test double).
        public var caFile: String?
        public var retry = RetryPolicy()
        public var requestTimeout: Duration = .seconds(5)
        /// A token is replaced this long before it expires (or after two thirds of its life, if sooner).
        public var tokenRefreshMargin: Duration = .seconds(300)

        public init(vault: VaultURL, authentication: AzureAuthentication) {
            self.vault = vault
            self.authentication = authentication
        }
    }

    /// A vault's address: `https://{name}.vault.azure.net` (or any https origin, for a test double).
    public struct VaultURL: Sendable, Hashable, CustomStringConvertible {
        /// `https://host[:port]`, lower-cased, no path.
        public let origin: String
        let host: String

        public init?(_ text: String) {
            guard let components = URLComponents(string: text), components.scheme?.lowercased() == "https",
                let host = components.host?.lowercased(), !host.isEmpty,
                components.path.isEmpty || components.path == "/", components.query == nil
            else { return nil }
            self.host = host
            origin = components.port.map { "https://\(host):\($0)" } ?? "https://\(host)"
        }

        /// Whether `url` is on this vault (same origin).
        func contains(_ url: String) -> Bool {
            guard let other = URLComponents(string: url), let host = other.host?.lowercased() else { return false }
            let origin = other.port.map { "https://\(host):\($0)" } ?? "https://\(host)"
            return other.scheme?.lowercased() == "https" && origin == self.origin
        }

        /// Whether a challenge's resource is this vault's parent domain (`https://vault.azure.net` for
        /// `x.vault.azure.net`), as the Azure SDK checks before trusting it.
        func isUnder(resource: String) -> Bool {
            guard let resourceHost = URLComponents(string: resource)?.host?.lowercased(), !resourceHost.isEmpty
            else { return false }
            return host.hasSuffix("." + resourceHost)
        }

        public var description: String { origin }
    }

    public let name: String
    private let settings: Settings
    private let client: KeyVaultClient
    private let logger: Logger
    /// Pinned versions never change: their accounts are read once.
    private let pinned = Mutex<[KeyIdentifier: Account]>([:])

    public init(name: String, settings: Settings, logger: Logger) {
        self.name = name
        self.settings = settings
        self.logger = logger
        let http = AzureHTTP(caFile: settings.caFile, timeout: settings.requestTimeout, retry: settings.retry)
        client = KeyVaultClient(
            vault: settings.vault, apiVersion: settings.apiVersion, resource: settings.resource,
            source: EntraTokenSource(
                authentication: settings.authentication, http: http, refreshMargin: settings.tokenRefreshMargin),
            http: http, label: name, logger: logger)
    }

    /// Whether `reference` is a usable `keys` entry (`name` or `name/version`), for configuration checks.
    public static func isValidKeyReference(_ reference: String) -> Bool {
        KeyIdentifier(reference: reference) != nil
    }

    /// Keeps the token fresh while the gateway is idle, until graceful shutdown.
    public func run() async throws {
        await cancelWhenGracefulShutdown { await self.client.keepTokenFresh() }
    }

    // MARK: Accounts

    public func accounts() async throws(SignerError) -> [Account] {
        var identifiers: [KeyIdentifier] = []
        if settings.keys.isEmpty {
            identifiers = try await discoverKeys()
        } else {
            for reference in settings.keys {
                guard let identifier = KeyIdentifier(reference: reference) else {
                    throw .configuration("\(name): \"\(reference)\" is not a key name or name/version")
                }
                identifiers.append(identifier)
            }
        }
        let configured = !settings.keys.isEmpty
        var accounts: [Account] = []
        for identifier in identifiers {
            if let account = pinned.withLock({ $0[identifier] }) {
                accounts.append(account)
                continue
            }
            do throws(SignerError) {
                guard let account = try await account(identifier, configured: configured) else { continue }
                if identifier.version != nil { pinned.withLock { $0[identifier] = account } }
                accounts.append(account)
            } catch {
                // A configured key that cannot be used is the operator's to fix; a discovered one is skipped.
                if configured || !error.isPermanent { throw error }
                logger.warning(
                    "skipping Key Vault key",
                    metadata: ["signer.backend": "\(name)", "azure.key": "\(identifier)", "error": "\(error)"])
            }
        }
        return accounts.sorted { $0.address < $1.address }
    }

    /// `GET /keys/{name}/{version}`: the account, or nil for a discovered key that is not secp256k1 (or has gone).
    private func account(_ identifier: KeyIdentifier, configured: Bool) async throws(SignerError) -> Account? {
        let bundle: JSONValue
        do {
            bundle = try await client.get(identifier.path)
        } catch {
            if !configured, case .service(let failure) = error.reason, failure.status == 404 { return nil }
            throw signerError(error, listing: true, key: identifier)
        }
        return try account(bundle: bundle, identifier, configured: configured)
    }

    /// The account a key bundle describes, at the version its `kid` names.
    private func account(
        bundle: JSONValue, _ identifier: KeyIdentifier, configured: Bool
    ) throws(SignerError) -> Account? {
        guard let keyJSON = bundle["key"] else {
            throw .invalidPublicKey("\(name): the bundle of \(identifier) has no key")
        }
        let key = try JSONWebKey(json: keyJSON)
        guard key.isSecp256k1 else {
            guard configured else { return nil }
            throw .configuration(
                "\(name): key \(identifier) is \(key.keyType) \(key.curve ?? "(no curve)"), not EC P-256K (secp256k1)")
        }
        guard let kidPath = URLComponents(string: key.kid)?.path, let found = KeyIdentifier(kidPath: kidPath),
            found.name.lowercased() == identifier.name.lowercased(), let version = found.version
        else { throw .invalidPublicKey("\(name): kid \(key.kid) does not name a version of \(identifier.name)") }
        return Account(publicKey: try key.publicKey(), backend: name, keyReference: "\(found.name)/\(version)")
    }

    /// Every key name the vault lists, page by page (`nextLink`).
    private func discoverKeys() async throws(SignerError) -> [KeyIdentifier] {
        var identifiers: [KeyIdentifier] = []
        var page: JSONValue
        do {
            page = try await client.get("/keys", query: [("maxresults", "25")])
        } catch {
            throw signerError(error, listing: true, key: nil)
        }
        while true {
            for item in page["value"]?.arrayValue ?? [] {
                guard let kid = item["kid"]?.stringValue, let path = URLComponents(string: kid)?.path,
                    let identifier = KeyIdentifier(kidPath: path)
                else { continue }
                identifiers.append(identifier)
            }
            guard let next = page["nextLink"]?.stringValue, !next.isEmpty else { return identifiers }
            do {
                page = try await client.get(nextLink: next)
            } catch {
                throw signerError(error, listing: true, key: nil)
            }
        }
    }

    // MARK: Key management

    /// `POST /keys/{name}/create` with `crv` P-256K: Key Vault generates the key and never lets it out.
    public func createAccount(label: String?) async throws(SignerError) -> Account {
        guard settings.keys.isEmpty else {
            throw .keyManagement(
                "\(name) uses only the keys its configuration names; create the key with az keyvault key create and "
                    + "add it to keys, or leave keys empty to use every P-256K key")
        }
        let keyName = label ?? "signer-\(UUID().uuidString.lowercased().prefix(8))"
        guard let identifier = KeyIdentifier(reference: keyName), identifier.version == nil else {
            throw .keyManagement("\"\(keyName)\" is not a Key Vault key name (letters, digits and dashes)")
        }
        let bundle: JSONValue
        do {
            bundle = try await client.post(
                "/keys/\(identifier.name)/create",
                ["kty": .string(settings.newKeyType), "crv": "P-256K", "key_ops": ["sign", "verify"]])
        } catch {
            throw keyManagementError(error, doing: "creating key \(keyName)", key: identifier)
        }
        guard let account = try account(bundle: bundle, identifier, configured: true) else {
            throw .keyManagement("\(name): Key Vault created \(keyName) without a P-256K key")
        }
        return account
    }

    /// `DELETE /keys/{name}`: every version goes into the vault's soft-deleted keys (recoverable for its retention
    /// period, then purged by Key Vault).
    public func deleteAccount(_ account: Account) async throws(SignerError) {
        guard settings.keys.isEmpty else {
            throw .keyManagement(
                "\(name): the configuration names its keys; remove \(account.keyReference) from keys, restart, and "
                    + "delete it with az keyvault key delete")
        }
        guard let identifier = KeyIdentifier(reference: account.keyReference) else {
            throw .unknownAccount("\(account.address.checksummed) (\(name) has no key \(account.keyReference))")
        }
        do {
            _ = try await client.delete("/keys/\(identifier.name)")
        } catch {
            throw keyManagementError(error, doing: "deleting key \(identifier.name)", key: identifier)
        }
        pinned.withLock { pinned in pinned = pinned.filter { $0.key.name.lowercased() != identifier.name.lowercased() } }
    }

    private func keyManagementError(
        _ error: KeyVaultCallError, doing: String, key: KeyIdentifier
    ) -> SignerError {
        if case .service(let failure) = error.reason, failure.status == 403 {
            return .keyManagement(
                "\(name): \(doing): forbidden; the identity needs the keys create and delete permissions "
                    + "(\(failure))")
        }
        let failure = signerError(error, listing: false, key: key)
        return failure.isPermanent ? .keyManagement("\(doing): \(failure)") : failure
    }

    // MARK: Signing

    public func sign(digest: Bytes32, for account: Account) async throws(SignerError) -> Signature {
        guard let identifier = KeyIdentifier(reference: account.keyReference), identifier.version != nil else {
            throw .unknownAccount("\(account.address.checksummed) (\(name) has no key \(account.keyReference))")
        }
        let publicKey = try account.requirePublicKey()
        let answer: JSONValue
        do {
            answer = try await client.post(
                identifier.path + "/sign", ["alg": "ES256K", "value": .string(Base64URL.encode(digest.bytes))])
        } catch {
            throw signerError(error, listing: false, key: identifier)
        }
        guard let encoded = answer["value"]?.stringValue, let raw = Base64URL.decode(encoded) else {
            throw .invalidSignature("\(name): sign answered without a base64url value")
        }
        do {
            let (r, s) = try Secp256k1.parseCompact(raw)
            return try Secp256k1.signature(r: r, s: s, digest: digest, publicKey: publicKey)
        } catch {
            throw .invalidSignature("\(name): \(raw.count)-byte ES256K answer: \(error)")
        }
    }

    /// A failed call as a `SignerError`, by status and Key Vault's error code: whether the pipeline may retry, and
    /// whose problem it is (the operator's at listing, this account's at signing).
    private func signerError(_ error: KeyVaultCallError, listing: Bool, key: KeyIdentifier?) -> SignerError {
        let failure: KeyVaultError
        switch error.reason {
        case .token(let error): return error
        case .service(let service): failure = service
        }
        let subject = key.map { "key \($0)" } ?? "listing keys"
        if failure.isRetryable { return .backendUnavailable("\(name): \(subject): \(failure)") }
        if case .configuration(let detail) = failure { return .configuration("\(name): \(detail)") }
        switch (failure.status, failure.code) {
        case (401, _):
            return .configuration("\(name): Key Vault refused a fresh token: \(failure)")
        case (404, "KeyNotFound"):
            // At signing the key was deleted (or never held): this account, not the backend, is the problem.
            if !listing, let key { return .unknownAccount("\(key) (\(name): Key Vault has no such key: deleted?)") }
            return .configuration("\(name): \(subject): no such key (\(failure))")
        case (403, _) where failure.innerCode == "KeyDisabled":
            return .rejected("\(name): \(subject) is disabled (\(failure))")
        case (403, _):
            let hint = "the identity needs the keys get, list and sign permissions"
            if listing { return .configuration("\(name): \(subject): forbidden; \(hint) (\(failure))") }
            return .rejected("\(name): \(subject): forbidden; \(hint) (\(failure))")
        default:
            if listing { return .configuration("\(name): \(subject): \(failure)") }
            return .rejected("\(name): \(subject): \(failure)")
        }
    }
}
