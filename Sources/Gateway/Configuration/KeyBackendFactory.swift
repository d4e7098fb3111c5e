import Ethereum
import Logging
import Signers
import SignersAWSKMS
import SignersPKCS11

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
                password: SecretReference(try values.required("password")), logger: logger)
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
        }
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
