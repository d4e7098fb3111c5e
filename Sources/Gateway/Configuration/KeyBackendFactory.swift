import Ethereum
import Foundation
import Logging
import Signers
import SignersAWSKMS
import SignersAzure
import SignersPKCS11
import SignersVault

/// Configuration → key backends: the one place where a configured entry becomes a `KeyBackend`. A new backend type
/// is a folder under `Sources/Signers/`, a case in `BackendType` (its keys) and one case here.
enum KeyBackendFactory {
    /// Every entry turned into its typed settings, nothing contacted: what `check-config` can say without the HSM.
    static func validate(_ entries: [BackendConfiguration]) throws(ConfigurationError) {
        let silent = Logger(label: "check-config", factory: { _ in SwiftLogNoOpLogHandler() })
        _ = try backends(for: entries, logger: silent)
    }

    static func backends(
        for entries: [BackendConfiguration], logger: Logger
    ) throws(ConfigurationError) -> [any KeyBackend] {
        var backends: [any KeyBackend] = []
        for entry in entries { backends.append(try backend(for: entry, logger: logger)) }
        return backends
    }

    static func backend(
        for entry: BackendConfiguration, logger: Logger
    ) throws(ConfigurationError) -> any KeyBackend {
        let values = EntryValues(entry: entry)
        switch entry.type {
        case .keystore:
            return KeystoreBackend(
                name: entry.name, directory: try values.required("directory"),
                password: SecretReference(try values.required("password")),
                newKeyKDF: try values.keystoreKDF("newKeyKDF"), logger: logger)
        case .pkcs11:
            var settings = PKCS11Backend.Settings(
                modulePath: try values.required("module"), tokenLabel: try values.required("tokenLabel"),
                pin: SecretReference(try values.required("pin")))
            settings.keyLabels = values.list("keyLabels")
            settings.keyIDs = try values.list("keyIds").map { (id: String) throws(ConfigurationError) -> [UInt8] in
                guard let bytes = try? Hex.decode(id.hasPrefix("0x") ? id : "0x" + id), !bytes.isEmpty else {
                    throw values.error("keyIds", "\"\(id)\" is not a hex CKA_ID")
                }
                return bytes
            }
            settings.sessions = try values.integer("sessions", in: 1...256) ?? settings.sessions
            return PKCS11Backend(name: entry.name, settings: settings, logger: logger)
        case .awsKms:
            let region = try values.required("region")
            var settings = AWSKMSBackend.Settings(
                region: region,
                credentials: AWSCredentials.Source(
                    accessKeyID: SecretReference(values.optional("accessKeyId") ?? "env:AWS_ACCESS_KEY_ID"),
                    secretAccessKey: SecretReference(
                        values.optional("secretAccessKey") ?? "env:AWS_SECRET_ACCESS_KEY"),
                    sessionToken: values.optional("sessionToken").map(SecretReference.init)
                        ?? .environmentIfSet("AWS_SESSION_TOKEN")))
            if let endpoint = values.optional("endpoint") {
                guard let url = AWSKMSBackend.Endpoint(url: endpoint) else {
                    throw values.error("endpoint", "\"\(endpoint)\" is not an http:// or https:// URL")
                }
                settings.endpoint = url
            }
            settings.keys = values.list("keys")
            settings.maximumRetries = try values.integer("maxRetries", in: 0...20) ?? settings.maximumRetries
            return AWSKMSBackend(name: entry.name, settings: settings, logger: logger)
        case .azureKeyVault:
            return try azureKeyVault(values, logger: logger)
        case .vault:
            return try vault(values, logger: logger)
        }
    }

    private static func azureKeyVault(
        _ values: EntryValues, logger: Logger
    ) throws(ConfigurationError) -> AzureKeyVaultBackend {
        let vault = try values.required(
            "vaultUrl", as: AzureKeyVaultBackend.VaultURL.init, "an https:// URL without a path")
        let authentication: AzureAuthentication
        switch values.optional("authentication") ?? "clientSecret" {
        case "clientSecret":
            let reason = "with clientSecret authentication"
            authentication = .clientSecret(
                tenantID: values.optional("tenantId"), clientID: try values.required("clientId", because: reason),
                secret: SecretReference(try values.required("clientSecret", because: reason)),
                authorityHost: try values.url("authorityHost") ?? AzureAuthentication.defaultAuthorityHost)
        case "managedIdentity":
            authentication = .managedIdentity(
                endpoint: try values.url("imdsEndpoint") ?? AzureAuthentication.defaultIMDSEndpoint,
                clientID: values.optional("clientId"))
        case let other:
            throw values.error("authentication", "\"\(other)\" is not clientSecret or managedIdentity")
        }
        var settings = AzureKeyVaultBackend.Settings(vault: vault, authentication: authentication)
        settings.keys = values.list("keys")
        for key in settings.keys where !AzureKeyVaultBackend.isValidKeyReference(key) {
            throw values.error("keys", "\"\(key)\" is not a key name or name/version (0-9, a-z, A-Z, -)")
        }
        settings.apiVersion = values.optional("apiVersion") ?? settings.apiVersion
        if let keyType = values.optional("newKeyType") {
            guard keyType == "EC" || keyType == "EC-HSM" else { throw values.error("newKeyType", "is EC or EC-HSM") }
            settings.newKeyType = keyType
        }
        settings.resource = try values.url("resource") ?? settings.resource
        settings.caFile = values.optional("caFile")
        settings.retry.maximumRetries = try values.integer("maxRetries", in: 0...20) ?? settings.retry.maximumRetries
        return AzureKeyVaultBackend(name: values.entry.name, settings: settings, logger: logger)
    }

    private static func vault(
        _ values: EntryValues, logger: Logger
    ) throws(ConfigurationError) -> HashiCorpVaultBackend {
        let address = try values.required(
            "address", as: HashiCorpVaultBackend.Address.init, "an http:// or https:// URL without a path")
        let authentication: VaultAuthentication
        switch (values.optional("token"), values.optional("roleId"), values.optional("secretId")) {
        case (let token?, nil, nil):
            authentication = .token(SecretReference(token))
        case (nil, let roleID?, let secretID?):
            authentication = .appRole(
                roleID: SecretReference(roleID), secretID: SecretReference(secretID),
                mount: values.optional("approleMount") ?? "approle")
        case (nil, nil, nil):
            throw values.error("token", "give a token, or roleId and secretId (AppRole)")
        case (_?, _, _):
            throw values.error("token", "give a token or roleId and secretId, not both")
        case (nil, _, _):
            throw values.error("roleId", "AppRole needs both roleId and secretId")
        }
        var settings = HashiCorpVaultBackend.Settings(address: address, authentication: authentication)
        if let mode = values.optional("mode") {
            guard let parsed = HashiCorpVaultBackend.Mode(rawValue: mode) else {
                throw values.error("mode", "\"\(mode)\" is not ethsign or kv2")
            }
            settings.mode = parsed
        }
        settings.mount = values.optional("mount")
        settings.namespace = values.optional("namespace")
        settings.tls = VaultTLS(
            caFile: values.optional("caFile"), clientCertificateFile: values.optional("clientCertificate"),
            clientKeyFile: values.optional("clientKey"))
        if (settings.tls.clientCertificateFile == nil) != (settings.tls.clientKeyFile == nil) {
            throw values.error("clientCertificate", "clientCertificate and clientKey go together")
        }
        settings.paths = values.list("paths")
        settings.field = values.optional("field") ?? settings.field
        settings.legacyForDynamicFee = try values.boolean("legacyForDynamicFee") ?? false
        switch settings.mode {
        case .kv2:
            guard !settings.paths.isEmpty else { throw values.error("paths", "required in kv2 mode") }
            if values.optional("legacyForDynamicFee") != nil {
                throw values.error("legacyForDynamicFee", "only for ethsign mode (kv2 keys sign any transaction)")
            }
        case .ethsign:
            if !settings.paths.isEmpty { throw values.error("paths", "only for kv2 mode") }
        }
        settings.retry.maximumRetries = try values.integer("maxRetries", in: 0...20) ?? settings.retry.maximumRetries
        return HashiCorpVaultBackend(name: values.entry.name, settings: settings, logger: logger)
    }
}

/// An entry's text values, read with errors that name the entry and the key.
private struct EntryValues {
    let entry: BackendConfiguration

    func error(_ key: String, _ problem: String) -> ConfigurationError {
        ConfigurationError("backends[\(entry.name)].\(key): \(problem)")
    }

    func optional(_ key: String) -> String? {
        guard let value = entry.values[key], !value.isEmpty else { return nil }
        return value
    }

    func required(_ key: String) throws(ConfigurationError) -> String {
        guard let value = optional(key) else { throw error(key, "required for a \(entry.type.rawValue) backend") }
        return value
    }

    func required(_ key: String, because reason: String) throws(ConfigurationError) -> String {
        guard let value = optional(key) else { throw error(key, "required \(reason)") }
        return value
    }

    /// A required value read by `parse`; an error saying it is not `what` if `parse` refuses it.
    func required<Value>(
        _ key: String, as parse: (String) -> Value?, _ what: String
    ) throws(ConfigurationError) -> Value {
        let text = try required(key)
        guard let value = parse(text) else { throw error(key, "\"\(text)\" is not \(what)") }
        return value
    }

    /// An http:// or https:// URL (trailing slashes dropped).
    func url(_ key: String) throws(ConfigurationError) -> String? {
        guard var text = optional(key) else { return nil }
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
            scheme == "http" || scheme == "https", components.host?.isEmpty == false
        else { throw error(key, "\"\(text)\" is not an http:// or https:// URL") }
        while text.hasSuffix("/") { text.removeLast() }
        return text
    }

    /// `standard` (geth's scrypt, the default) or `light` (fast to unlock: development keys only).
    func keystoreKDF(_ key: String) throws(ConfigurationError) -> KeystoreFile.KDF {
        switch optional(key)?.lowercased() {
        case nil, "standard": return .standard
        case "light": return .light
        case let other?: throw error(key, "\"\(other)\" is neither standard nor light")
        }
    }

    func boolean(_ key: String) throws(ConfigurationError) -> Bool? {
        guard let text = optional(key) else { return nil }
        switch text.lowercased() {
        case "true", "yes", "on", "1": return true
        case "false", "no", "off", "0": return false
        default: throw error(key, "\"\(text)\" is not true or false")
        }
    }

    func list(_ key: String) -> [String] {
        (optional(key) ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter {
            !$0.isEmpty
        }
    }

    func integer(_ key: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int? {
        guard let text = optional(key) else { return nil }
        guard let value = Int(text), range.contains(value) else {
            throw error(key, "\"\(text)\" is not a whole number in \(range.lowerBound)…\(range.upperBound)")
        }
        return value
    }
}
