import Ethereum
import JSON
import Signers

/// The `key` of a Key Vault key bundle: a JSON Web Key. Only secp256k1 EC keys are usable (`crv` P-256K, `kty` EC
/// for software-protected or EC-HSM for HSM-protected keys); x and y are unpadded base64url, 32 bytes each.
struct JSONWebKey: Sendable, Hashable {
    static let secp256k1Curve = "P-256K"
    static let ellipticCurveTypes: Set<String> = ["EC", "EC-HSM"]

    /// `https://{vault}/keys/{name}/{version}`.
    let kid: String
    let keyType: String
    let curve: String?
    let x: String?
    let y: String?

    init(json: JSONValue) throws(SignerError) {
        guard let kid = json["kid"]?.stringValue, let keyType = json["kty"]?.stringValue else {
            throw .invalidPublicKey("the key bundle has no kid or kty")
        }
        self.kid = kid
        self.keyType = keyType
        curve = json["crv"]?.stringValue
        x = json["x"]?.stringValue
        y = json["y"]?.stringValue
    }

    /// Whether it is a key the gateway can use (an RSA or P-256 key in the same vault is simply not one).
    var isSecp256k1: Bool { Self.ellipticCurveTypes.contains(keyType) && curve == Self.secp256k1Curve }

    /// The uncompressed point `04 ‖ X ‖ Y`, checked to be on the curve.
    func publicKey() throws(SignerError) -> PublicKey {
        guard isSecp256k1 else {
            throw .invalidPublicKey("\(kid) is \(keyType) \(curve ?? "(no curve)"), not EC P-256K (secp256k1)")
        }
        guard let x = x.flatMap(Base64URL.decode), let y = y.flatMap(Base64URL.decode), x.count == 32, y.count == 32
        else {
            throw .invalidPublicKey("\(kid): x and y must be 32-byte base64url coordinates")
        }
        do {
            return try PublicKey(bytes: [0x04] + x + y)
        } catch {
            throw .invalidPublicKey("\(kid): the point is not on secp256k1")
        }
    }
}
