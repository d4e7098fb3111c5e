import Foundation

/// One entry of the `backends:` list: a type, a name (unique; it labels logs and addresses the entry from the
/// environment) and the type's own keys, kept as text until `KeyBackendFactory` turns them into typed settings.
///
/// Environment overrides address an entry by its name: `SIGNER_GATEWAY_BACKENDS_<NAME>_<KEY>`, the name in upper
/// case with every other character as `_` (`cloud-hsm` → `CLOUD_HSM`), the key in upper snake case
/// (`tokenLabel` → `TOKEN_LABEL`). So `SIGNER_GATEWAY_BACKENDS_CLOUD_HSM_PIN=env:HSM_PIN` sets the PIN reference of
/// the entry named `cloud-hsm`. Entries themselves come from the file (or from the `keystore.*` keys).
public struct BackendConfiguration: Sendable, Hashable {
    public var type: BackendType
    public var name: String
    public var values: [String: String]

    public init(type: BackendType, name: String, values: [String: String] = [:]) {
        self.type = type
        self.name = name
        self.values = values
    }

    public var environmentPrefix: String {
        "SIGNER_GATEWAY_BACKENDS_" + String(name.uppercased().map { $0.isLetter || $0.isNumber ? $0 : "_" }) + "_"
    }
}

/// The kinds of key backend, each with the keys its entry may have.
public enum BackendType: String, Sendable, Hashable, CaseIterable {
    case keystore
    case pkcs11
    case awsKms
    case azureKeyVault
    case vault

    public var keys: [BackendKey] {
        switch self {
        case .keystore:
            [
                BackendKey("directory", "Directory of Web3 Secret Storage v3 files.", required: true),
                BackendKey("password", "The files' password, by reference: env:NAME or file:/path.", secret: true),
                BackendKey(
                    "newKeyKDF",
                    "scrypt for keys created or imported by signer_createAccount/importAccount: standard (default) "
                        + "or light (development keys)."),
            ]
        case .pkcs11:
            [
                BackendKey(
                    "module", "PKCS#11 module to load (CloudHSM: /opt/cloudhsm/lib/libcloudhsm_pkcs11.so).",
                    required: true),
                BackendKey("tokenLabel", "The token, by label.", required: true),
                BackendKey("pin", "User PIN by reference (CloudHSM: <crypto user>:<password>).", secret: true),
                BackendKey("keyLabels", "CKA_LABEL patterns of the keys to use, comma-separated (signer-*)."),
                BackendKey("keyIds", "Hex CKA_IDs of the keys to use, comma-separated. Neither: every secp256k1 key."),
                BackendKey("sessions", "Sessions (and threads): signatures in flight at once. Default 4."),
            ]
        case .awsKms:
            [
                BackendKey("region", "AWS region (us-east-1).", required: true),
                BackendKey("endpoint", "Endpoint URL override (a VPC endpoint); default https://kms.REGION.amazonaws.com."),
                BackendKey(
                    "accessKeyId", "Access key id by reference; default env:AWS_ACCESS_KEY_ID.", secret: true),
                BackendKey(
                    "secretAccessKey", "Secret access key by reference; default env:AWS_SECRET_ACCESS_KEY.",
                    secret: true),
                BackendKey(
                    "sessionToken", "Session token by reference; default env:AWS_SESSION_TOKEN when it is set.",
                    secret: true),
                BackendKey(
                    "keys", "Key ids, ARNs or alias/NAMEs, comma-separated. Empty: every secp256k1 signing key found."),
                BackendKey("maxRetries", "Throttled or failed calls retried up to this many times. Default 4."),
            ]
        case .azureKeyVault:
            [
                BackendKey("vaultUrl", "The vault, https://NAME.vault.azure.net.", required: true),
                BackendKey(
                    "authentication",
                    "clientSecret (an app registration; the default) or managedIdentity (the VM's or container's)."),
                BackendKey(
                    "tenantId", "Directory (tenant) id of the app registration (clientSecret); default: the vault's."),
                BackendKey(
                    "clientId",
                    "Application (client) id (clientSecret); with managedIdentity, a user-assigned identity's "
                        + "client id."),
                BackendKey("clientSecret", "The app registration's client secret by reference.", secret: true),
                BackendKey("authorityHost", "Entra ID authority; default https://login.microsoftonline.com."),
                BackendKey(
                    "imdsEndpoint",
                    "Managed-identity token endpoint; default http://169.254.169.254/metadata/identity/oauth2/token."),
                BackendKey(
                    "keys",
                    "Key names (current version) or name/version (pinned), comma-separated. Empty: every P-256K key."),
                BackendKey("apiVersion", "Key Vault REST api-version. Default 7.4."),
                BackendKey(
                    "newKeyType", "kty of keys signer_createAccount makes: EC (default) or EC-HSM (premium tier)."),
                BackendKey("resource", "The resource tokens are for. Default https://vault.azure.net."),
                BackendKey("caFile", "PEM CA bundle trusted instead of the system's, for the vault and the authority."),
                BackendKey(
                    "maxRetries", "Throttled (429, Retry-After honoured) or failed (5xx) calls retried. Default 4."),
            ]
        case .vault:
            [
                BackendKey("address", "Vault's address, https://vault.example.com:8200.", required: true),
                BackendKey(
                    "mode",
                    "ethsign (the plugin holds the keys; the default) or kv2 (hex keys in KV v2 secrets, read into "
                        + "memory)."),
                BackendKey("mount", "Mount path of the ethsign plugin or the KV v2 engine. Default ethereum / secret."),
                BackendKey("namespace", "Vault Enterprise / OpenBao namespace (X-Vault-Namespace)."),
                BackendKey("token", "A Vault token by reference (or use roleId and secretId).", secret: true),
                BackendKey("roleId", "AppRole role id by reference.", secret: true),
                BackendKey("secretId", "AppRole secret id by reference.", secret: true),
                BackendKey("approleMount", "Mount path of the AppRole auth method. Default approle."),
                BackendKey("caFile", "PEM CA bundle trusted instead of the system's."),
                BackendKey("clientCertificate", "PEM client certificate, for listeners that require one."),
                BackendKey("clientKey", "PEM private key of the client certificate."),
                BackendKey("paths", "kv2: secret paths under the mount, one key each, comma-separated."),
                BackendKey("field", "kv2: the secrets' field holding the hex private key. Default privateKey."),
                BackendKey(
                    "legacyForDynamicFee",
                    "ethsign: true sends EIP-1559 requests as legacy transactions, gasPrice = maxFeePerGas. "
                        + "Default false."),
                BackendKey("maxRetries", "Throttled or failed (429, 502-504) calls retried. Default 4."),
            ]
        }
    }
}

/// A key of one backend type: name, meaning, and whether it must be given or names a secret.
public struct BackendKey: Sendable, Hashable {
    public let name: String
    public let documentation: String
    public let required: Bool
    /// Given by reference (`env:`/`file:`); a bare value is printed redacted.
    public let secret: Bool

    init(_ name: String, _ documentation: String, required: Bool = false, secret: Bool = false) {
        self.name = name
        self.documentation = documentation
        self.required = required
        self.secret = secret
    }

    /// `tokenLabel` → `TOKEN_LABEL`.
    var environmentSuffix: String {
        var suffix = ""
        for character in name {
            if character.isUppercase && !suffix.isEmpty { suffix += "_" }
            suffix += character.uppercased()
        }
        return suffix
    }
}

extension GatewayConfiguration {
    /// Every backend entry: the `backends:` list, plus the `keystore.*` keys as an entry named `keystore` (the
    /// form older configurations and the dev quickstart use).
    public var allBackends: [BackendConfiguration] {
        var entries = backends
        if let directory = wallet.keystoreDirectory {
            var values = ["directory": directory]
            values["password"] = wallet.keystorePassword
            entries.append(BackendConfiguration(type: .keystore, name: "keystore", values: values))
        }
        return entries
    }
}

enum BackendConfigurationLoader {
    /// The `backends:` YAML list → entries, each checked against its type's keys.
    static func entries(from node: Any, source: String) throws(ConfigurationError) -> [BackendConfiguration] {
        guard let list = node as? [Any] else {
            throw ConfigurationError("\(source): backends must be a list of entries (- type: … name: …)")
        }
        var entries: [BackendConfiguration] = []
        for (index, item) in list.enumerated() {
            guard let mapping = item as? [String: Any] else {
                throw ConfigurationError("\(source): backends[\(index)] must be a mapping with type and name")
            }
            guard let typeText = mapping["type"].map({ "\($0)" }) else {
                throw ConfigurationError("\(source): backends[\(index)] has no type (one of \(typeNames))")
            }
            guard let type = BackendType(rawValue: typeText) else {
                throw ConfigurationError(
                    "\(source): backends[\(index)].type: \"\(typeText)\" is not one of \(typeNames)")
            }
            guard let name = mapping["name"].map({ "\($0)" }), !name.isEmpty else {
                throw ConfigurationError("\(source): backends[\(index)] (\(typeText)) has no name")
            }
            var values: [String: String] = [:]
            for (key, value) in mapping where key != "type" && key != "name" {
                guard type.keys.contains(where: { $0.name == key }) else {
                    throw ConfigurationError(
                        "\(source): backends[\(name)]: unknown key \"\(key)\" for a \(type.rawValue) backend (known: "
                            + type.keys.map(\.name).joined(separator: ", ") + ")")
                }
                if value is [Any] || value is [String: Any] {
                    throw ConfigurationError("\(source): backends[\(name)].\(key) must be a single value")
                }
                if !(value is NSNull) { values[key] = "\(value)" }
            }
            entries.append(BackendConfiguration(type: type, name: name, values: values))
        }
        return entries
    }

    /// Applies `SIGNER_GATEWAY_BACKENDS_<NAME>_<KEY>` variables; the longest matching name wins, so `kms` and
    /// `kms-eu` can both be addressed. A variable that matches an entry but none of its keys is an error.
    static func applyEnvironment(
        _ environment: [String: String], to entries: inout [BackendConfiguration]
    ) throws(ConfigurationError) {
        let prefixes = entries.indices.sorted { entries[$0].environmentPrefix.count > entries[$1].environmentPrefix.count }
        for (variable, value) in environment.sorted(by: { $0.key < $1.key })
        where variable.hasPrefix("SIGNER_GATEWAY_BACKENDS_") {
            guard let index = prefixes.first(where: { variable.hasPrefix(entries[$0].environmentPrefix) }) else {
                throw ConfigurationError(
                    "\(variable): no backend entry has that name (entries: "
                        + entries.map(\.name).joined(separator: ", ") + ")")
            }
            let suffix = String(variable.dropFirst(entries[index].environmentPrefix.count))
            guard let key = entries[index].type.keys.first(where: { $0.environmentSuffix == suffix }) else {
                throw ConfigurationError(
                    "\(variable): backend \(entries[index].name) (\(entries[index].type.rawValue)) has no key "
                        + "\(suffix); known: " + entries[index].type.keys.map(\.environmentSuffix).joined(separator: ", "))
            }
            entries[index].values[key.name] = value
        }
        var seen: Set<String> = []
        for entry in entries {
            guard seen.insert(entry.name).inserted else {
                throw ConfigurationError("backends: two entries are named \"\(entry.name)\"; names must be unique")
            }
            for key in entry.type.keys where key.required && entry.values[key.name, default: ""].isEmpty {
                throw ConfigurationError("backends[\(entry.name)].\(key.name): required for a \(entry.type.rawValue) backend")
            }
        }
    }

    /// `backends[name].key = value` lines; secrets only as references.
    static func describe(_ entries: [BackendConfiguration]) -> [String] {
        entries.flatMap { entry in
            ["backends[\(entry.name)].type = \(entry.type.rawValue)"]
                + entry.type.keys.compactMap { key -> String? in
                    guard let value = entry.values[key.name] else { return nil }
                    let shown = key.secret && !value.hasPrefix("env:") && !value.hasPrefix("file:") ? "<redacted>" : value
                    return "backends[\(entry.name)].\(key.name) = \(shown)"
                }
        }
    }

    private static var typeNames: String { BackendType.allCases.map(\.rawValue).joined(separator: ", ") }
}
