import Ethereum
import Foundation
import JSON
import Logging
import Signers
import Synchronization

/// Keys in AWS KMS (KeySpec `ECC_SECG_P256K1`, KeyUsage `SIGN_VERIFY`). The private key never leaves KMS: the
/// gateway sends the 32-byte digest (`MessageType: DIGEST`, `ECDSA_SHA_256`) and turns the DER signature into a
/// canonical one by recovery (KMS signatures are not deterministic, so nothing is compared byte for byte).
public final class AWSKMSBackend: KeyManagingBackend {
    public struct Settings: Sendable, Hashable {
        public var region: String
        public var credentials: AWSCredentials.Source
        /// Default: `https://kms.<region>.amazonaws.com/`.
        public var endpoint: Endpoint?
        /// Key ids, ARNs or `alias/NAME`s. Empty: every enabled secp256k1 signing key the credentials can list.
        public var keys: [String] = []
        /// Retries of a throttled or failed call (each with jittered backoff).
        public var maximumRetries = 4
        public var requestTimeout: Duration = .seconds(5)

        public init(region: String, credentials: AWSCredentials.Source = AWSCredentials.Source()) {
            self.region = region
            self.credentials = credentials
        }
    }

    /// Where KMS is: scheme, host and port, and the `Host` header SigV4 signs (with the port when it is not the
    /// scheme's default, as on a loopback test server).
    public struct Endpoint: Sendable, Hashable {
        public let url: String
        public let hostHeader: String

        public init?(url text: String) {
            guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
                scheme == "http" || scheme == "https", let host = components.host, !host.isEmpty
            else { return nil }
            let defaultPort = scheme == "https" ? 443 : 80
            let port = components.port ?? defaultPort
            hostHeader = port == defaultPort ? host : "\(host):\(port)"
            url = "\(scheme)://\(hostHeader)/"
        }
    }

    public let name: String
    private let settings: Settings
    private let client: KMSClient
    private let logger: Logger
    /// Public keys by the reference used to sign (as configured, or the key id found): GetPublicKey once per key.
    private let known = Mutex<[String: Account]>([:])

    public init(name: String, settings: Settings, logger: Logger) {
        self.name = name
        self.settings = settings
        self.logger = logger
        client = KMSClient(
            endpoint: settings.endpoint ?? Endpoint(url: "https://kms.\(settings.region).amazonaws.com/")!,
            region: settings.region, credentials: settings.credentials, maximumRetries: settings.maximumRetries,
            requestTimeout: settings.requestTimeout)
    }

    // MARK: Accounts

    public func accounts() async throws(SignerError) -> [Account] {
        let references: [String]
        if settings.keys.isEmpty {
            references = try await discoverKeys()
        } else {
            references = settings.keys
        }
        var accounts: [Account] = []
        for reference in references {
            if let account = known.withLock({ $0[reference] }) {
                accounts.append(account)
                continue
            }
            do throws(SignerError) {
                // A discovered key pending deletion (or disabled) is listed by ListKeys but signs nothing.
                if settings.keys.isEmpty, try await keyState(reference) != "Enabled" { continue }
                let account = try await publicKey(reference, requireSecp256k1: !settings.keys.isEmpty)
                guard let account else { continue }
                known.withLock { $0[reference] = account }
                accounts.append(account)
            } catch {
                // A configured key that cannot be used is the operator's to fix; a discovered one is skipped.
                if !settings.keys.isEmpty { throw error }
                logger.warning(
                    "skipping KMS key", metadata: ["signer.backend": "\(name)", "kms.key": "\(reference)",
                        "error": "\(error)"])
            }
        }
        return accounts.sorted { $0.address < $1.address }
    }

    /// `GetPublicKey`: the account, or nil for a discovered key that is not a secp256k1 signing key.
    private func publicKey(_ reference: String, requireSecp256k1: Bool) async throws(SignerError) -> Account? {
        let answer = try await call("GetPublicKey", ["KeyId": .string(reference)], key: reference)
        if let usage = answer["KeyUsage"]?.stringValue, usage != "SIGN_VERIFY" {
            guard requireSecp256k1 else { return nil }
            throw .configuration("\(name): key \(reference) has KeyUsage \(usage), not SIGN_VERIFY")
        }
        // Stock moto omits KeySpec; the DER itself names the curve, and is what decides.
        if let spec = answer["KeySpec"]?.stringValue ?? answer["CustomerMasterKeySpec"]?.stringValue,
            spec != "ECC_SECG_P256K1"
        {
            guard requireSecp256k1 else { return nil }
            throw .configuration("\(name): key \(reference) is \(spec), not ECC_SECG_P256K1 (secp256k1)")
        }
        guard let encoded = answer["PublicKey"]?.stringValue, let der = Data(base64Encoded: encoded) else {
            throw .backendUnavailable("\(name): GetPublicKey for \(reference) has no PublicKey")
        }
        do {
            let publicKey = try PublicKeyEncodings.publicKey(subjectPublicKeyInfo: Array(der))
            return Account(publicKey: publicKey, backend: name, keyReference: reference)
        } catch {
            guard requireSecp256k1 else { return nil }
            throw error
        }
    }

    /// `DescribeKey`'s `KeyState`: `Enabled`, `Disabled`, `PendingDeletion`, …
    private func keyState(_ reference: String) async throws(SignerError) -> String? {
        let answer = try await call("DescribeKey", ["KeyId": .string(reference)], key: reference)
        return answer["KeyMetadata"]?["KeyState"]?.stringValue
    }

    // MARK: Key management

    /// `CreateKey` (`ECC_SECG_P256K1`, `SIGN_VERIFY`): KMS generates the key and never lets it out. `label` becomes
    /// the key's description.
    public func createAccount(label: String?) async throws(SignerError) -> Account {
        guard settings.keys.isEmpty else {
            throw .keyManagement(
                "\(name) uses only the keys its configuration names; create the key with aws kms create-key and add "
                    + "it to keys, or leave keys empty to use every secp256k1 key the credentials list")
        }
        let created: JSONValue
        do throws(SignerError) {
            created = try await call(
                "CreateKey",
                [
                    "KeySpec": "ECC_SECG_P256K1", "KeyUsage": "SIGN_VERIFY",
                    "Description": .string(label ?? "signer-gateway account"),
                ], key: nil)
        } catch {
            throw error.isPermanent ? .keyManagement("\(name): CreateKey: \(error)") : error
        }
        guard let keyID = created["KeyMetadata"]?["KeyId"]?.stringValue else {
            throw .backendUnavailable("\(name): CreateKey answered without a KeyId")
        }
        guard let account = try await publicKey(keyID, requireSecp256k1: true) else {
            throw .keyManagement("\(name): the new key \(keyID) is not a secp256k1 signing key")
        }
        known.withLock { $0[keyID] = account }
        return account
    }

    /// `ScheduleKeyDeletion` with KMS's shortest waiting period (7 days): the key stops signing at once and can be
    /// recovered with `CancelKeyDeletion` until then.
    public func deleteAccount(_ account: Account) async throws(SignerError) {
        guard settings.keys.isEmpty else {
            throw .keyManagement(
                "\(name): the configuration names its keys; remove \(account.keyReference) from keys, restart, and "
                    + "schedule its deletion with aws kms schedule-key-deletion")
        }
        do throws(SignerError) {
            _ = try await call(
                "ScheduleKeyDeletion", ["KeyId": .string(account.keyReference), "PendingWindowInDays": 7],
                key: account.keyReference)
        } catch {
            throw error.isPermanent ? .keyManagement("\(name): ScheduleKeyDeletion: \(error)") : error
        }
        known.withLock { $0[account.keyReference] = nil }
    }

    /// Every key the credentials can list (`ListKeys`, all pages), enabled or not; `GetPublicKey` sorts them.
    private func discoverKeys() async throws(SignerError) -> [String] {
        var keys: [String] = []
        var marker: String?
        repeat {
            var request: JSONObject = JSONObject([("Limit", 1000)])
            if let marker { request["Marker"] = .string(marker) }
            let page = try await call("ListKeys", .object(request), key: nil)
            keys += (page["Keys"]?.arrayValue ?? []).compactMap { $0["KeyId"]?.stringValue }
            marker = page["Truncated"]?.boolValue == true ? page["NextMarker"]?.stringValue : nil
        } while marker != nil
        return keys
    }

    // MARK: Signing

    public func sign(digest: Bytes32, for account: Account) async throws(SignerError) -> Signature {
        let publicKey = try account.requirePublicKey()
        let answer = try await call(
            "Sign",
            [
                "KeyId": .string(account.keyReference), "Message": .string(Data(digest.bytes).base64EncodedString()),
                "MessageType": "DIGEST", "SigningAlgorithm": "ECDSA_SHA_256",
            ], key: account.keyReference)
        guard let encoded = answer["Signature"]?.stringValue, let der = Data(base64Encoded: encoded) else {
            throw .invalidSignature("\(name): Sign answered without a Signature")
        }
        do {
            let (r, s) = try Secp256k1.parseDER(Array(der))
            return try Secp256k1.signature(r: r, s: s, digest: digest, publicKey: publicKey)
        } catch {
            throw .invalidSignature("\(name): \(error)")
        }
    }

    /// One KMS call, its failure said as a `SignerError` that tells the pipeline whether to retry.
    private func call(_ operation: String, _ body: JSONValue, key: String?) async throws(SignerError) -> JSONValue {
        do {
            return try await client.call(operation, body)
        } catch {
            let subject = key.map { "\(operation) \($0)" } ?? operation
            if error.isAuthentication { throw .configuration("\(name): AWS refused the credentials (\(error))") }
            if error.isRetryable { throw .backendUnavailable("\(name): \(subject): \(error)") }
            switch error.type {
            case "NotFoundException":
                // At signing the key was deleted (or never held): this account, not the backend, is the problem.
                if operation == "Sign", let key { throw .unknownAccount("\(key) (\(name): KMS has no such key)") }
                throw .configuration("\(name): \(subject): no such key (\(error))")
            case "DisabledException", "KMSInvalidStateException", "AccessDeniedException", "KeyUnavailableException":
                throw .rejected("\(name): \(subject): \(error)")
            default:
                if case .credentials = error { throw .configuration("\(name): \(error)") }
                throw .rejected("\(name): \(subject): \(error)")
            }
        }
    }
}
