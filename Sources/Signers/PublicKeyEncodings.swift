import Ethereum
import SwiftASN1

/// The DER forms in which backends hand out a secp256k1 public key, read with swift-asn1 (not by byte offsets: a
/// length of 0x81 0x41 is as valid as 0x41).
public enum PublicKeyEncodings {
    /// secp256k1's object identifier, 1.3.132.0.10 (DER `06 05 2b 81 04 00 0a`).
    public static let secp256k1: ASN1ObjectIdentifier = [1, 3, 132, 0, 10]
    /// The same OID DER-encoded, as PKCS#11 `CKA_EC_PARAMS` names the curve of a key to generate.
    public static let secp256k1Parameters: [UInt8] = [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a]
    /// id-ecPublicKey, 1.2.840.10045.2.1.
    static let ecPublicKey: ASN1ObjectIdentifier = [1, 2, 840, 10045, 2, 1]

    /// Whether DER-encoded EC domain parameters (PKCS#11 `CKA_EC_PARAMS`) name secp256k1.
    public static func isSecp256k1(parameters der: [UInt8]) -> Bool {
        (try? ASN1ObjectIdentifier(derEncoded: der[...])) == secp256k1
    }

    /// PKCS#11 `CKA_EC_POINT`: a DER OCTET STRING around `04 ‖ X ‖ Y`. Some modules return the bare point; both are
    /// accepted, and the point must be on the curve.
    public static func publicKey(ecPoint der: [UInt8]) throws(SignerError) -> PublicKey {
        let point: [UInt8]
        if let octets = try? ASN1OctetString(derEncoded: der[...]) {
            point = Array(octets.bytes)
        } else {
            point = der
        }
        do {
            return try PublicKey(bytes: point)
        } catch {
            throw .invalidPublicKey("CKA_EC_POINT is not a secp256k1 point")
        }
    }

    /// X.509 SubjectPublicKeyInfo (AWS KMS `GetPublicKey`): `SEQUENCE { SEQUENCE { id-ecPublicKey, secp256k1 },
    /// BIT STRING point }`. Any other algorithm or curve is refused.
    public static func publicKey(subjectPublicKeyInfo der: [UInt8]) throws(SignerError) -> PublicKey {
        do {
            let root = try DER.parse(der[...])
            let (algorithm, curve, point) = try DER.sequence(root, identifier: .sequence) { nodes in
                guard let algorithmNode = nodes.next() else { throw SignerError.invalidPublicKey("no algorithm") }
                let (algorithm, curve) = try DER.sequence(algorithmNode, identifier: .sequence) { inner in
                    let algorithm = try ASN1ObjectIdentifier(derEncoded: &inner)
                    let curve = try ASN1ObjectIdentifier(derEncoded: &inner)
                    return (algorithm, curve)
                }
                let point = try ASN1BitString(derEncoded: &nodes)
                return (algorithm, curve, point)
            }
            guard algorithm == ecPublicKey, curve == secp256k1 else {
                throw SignerError.invalidPublicKey("the key is not on secp256k1 (\(algorithm), \(curve))")
            }
            return try PublicKey(bytes: Array(point.bytes))
        } catch let error as SignerError {
            throw error
        } catch {
            throw .invalidPublicKey("not a DER SubjectPublicKeyInfo for secp256k1 (\(error))")
        }
    }
}
