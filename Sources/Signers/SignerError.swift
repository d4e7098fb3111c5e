/// Why a backend could not list or sign. `isPermanent` tells the pipeline whether retrying can help.
public struct SignerError: Error, Sendable, Hashable, CustomStringConvertible {
    private enum Kind: Hashable, Sendable {
        case unknownAccount(String)
        case backendUnavailable(String)
        case rejected(String)
        case invalidSignature(String)
        case invalidPublicKey(String)
        case configuration(String)
        case keystore(String)
        case keyManagement(String)
    }

    private let kind: Kind
    private init(_ kind: Kind) { self.kind = kind }

    public static func unknownAccount(_ address: String) -> SignerError { .init(.unknownAccount(address)) }
    /// The backend could not be reached or was throttled: retry may succeed.
    public static func backendUnavailable(_ detail: String) -> SignerError { .init(.backendUnavailable(detail)) }
    /// The backend refused (key disabled, permission denied).
    public static func rejected(_ detail: String) -> SignerError { .init(.rejected(detail)) }
    /// The backend answered with a signature that does not verify against the account's public key.
    public static func invalidSignature(_ detail: String) -> SignerError { .init(.invalidSignature(detail)) }
    /// A key the backend lists is not a usable secp256k1 public key.
    public static func invalidPublicKey(_ detail: String) -> SignerError { .init(.invalidPublicKey(detail)) }
    public static func configuration(_ detail: String) -> SignerError { .init(.configuration(detail)) }
    public static func keystore(_ detail: String) -> SignerError { .init(.keystore(detail)) }
    /// A key could not be created, imported or deleted (the backend cannot, or refused).
    public static func keyManagement(_ detail: String) -> SignerError { .init(.keyManagement(detail)) }

    /// A mistake only the operator can fix (a wrong PIN, a missing module): at start it stops the gateway.
    public var isConfiguration: Bool {
        if case .configuration = kind { return true }
        return false
    }

    public var isPermanent: Bool {
        if case .backendUnavailable = kind { return false }
        return true
    }

    /// Short, bounded, safe for a metric label.
    public var label: String {
        switch kind {
        case .unknownAccount: "unknown_account"
        case .backendUnavailable: "backend_unavailable"
        case .rejected: "rejected"
        case .invalidSignature: "invalid_signature"
        case .invalidPublicKey: "invalid_public_key"
        case .configuration: "configuration"
        case .keystore: "keystore"
        case .keyManagement: "key_management"
        }
    }

    public var description: String {
        switch kind {
        case .unknownAccount(let address): "no key backend holds account \(address)"
        case .backendUnavailable(let detail): "key backend unavailable: \(detail)"
        case .rejected(let detail): "key backend refused to sign: \(detail)"
        case .invalidSignature(let detail): "key backend returned an invalid signature: \(detail)"
        case .invalidPublicKey(let detail): "key backend returned an unusable public key: \(detail)"
        case .configuration(let detail): "key backend configuration: \(detail)"
        case .keystore(let detail): "keystore: \(detail)"
        case .keyManagement(let detail): "key management: \(detail)"
        }
    }
}
