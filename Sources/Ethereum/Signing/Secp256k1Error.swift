public struct Secp256k1Error: Error, Sendable, Hashable, CustomStringConvertible {
    private enum Kind: Hashable, Sendable {
        case invalidPrivateKey
        case invalidPublicKey
        case invalidSignature
        case invalidDER
        case recoveryFailed
        case signatureDoesNotMatchKey
    }

    private let kind: Kind
    private init(_ kind: Kind) { self.kind = kind }

    public static let invalidPrivateKey = Secp256k1Error(.invalidPrivateKey)
    public static let invalidPublicKey = Secp256k1Error(.invalidPublicKey)
    public static let invalidSignature = Secp256k1Error(.invalidSignature)
    public static let invalidDER = Secp256k1Error(.invalidDER)
    public static let recoveryFailed = Secp256k1Error(.recoveryFailed)
    public static let signatureDoesNotMatchKey = Secp256k1Error(.signatureDoesNotMatchKey)

    public var description: String {
        switch kind {
        case .invalidPrivateKey: "invalid secp256k1 private key"
        case .invalidPublicKey: "invalid secp256k1 public key"
        case .invalidSignature: "invalid secp256k1 signature (r or s out of range)"
        case .invalidDER: "invalid DER-encoded ECDSA signature"
        case .recoveryFailed: "public key recovery failed"
        case .signatureDoesNotMatchKey: "signature does not verify against the key's public key"
        }
    }
}
