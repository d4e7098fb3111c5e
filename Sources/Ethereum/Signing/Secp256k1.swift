import CSecp256k1

/// The one place that calls libsecp256k1 (Debian's 0.2.0, through the `CSecp256k1` system library).
public enum Secp256k1 {
    /// The curve order n.
    public static let order = try! UInt256(
        hexQuantity: "0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141")
    /// ⌊n / 2⌋: the largest `s` a canonical (EIP-2) signature may carry.
    public static let halfOrder = try! UInt256(
        hexQuantity: "0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0")

    /// libsecp256k1 contexts are safe to share for signing and verification once created; randomisation mutates
    /// the context, so it happens exactly once here, before any other thread can see it.
    private final class Context: @unchecked Sendable {
        let pointer: OpaquePointer

        init() {
            pointer = secp256k1_context_create(UInt32(SECP256K1_CONTEXT_NONE))!
            var seed = [UInt8](repeating: 0, count: 32)
            var generator = SystemRandomNumberGenerator()
            for index in seed.indices { seed[index] = UInt8.random(in: .min ... .max, using: &generator) }
            _ = secp256k1_context_randomize(pointer, seed)  // side-channel blinding for signing
        }
    }

    private static let shared = Context()
    private static var context: OpaquePointer { shared.pointer }

    static func isValidPrivateKey(_ key: UnsafeMutableRawBufferPointer) -> Bool {
        secp256k1_ec_seckey_verify(context, key.baseAddress!.assumingMemoryBound(to: UInt8.self)) == 1
    }

    static func publicKey(of key: PrivateKey) -> PublicKey {
        var point = secp256k1_pubkey()
        let created = key.withUnsafeBytes { secret in
            secp256k1_ec_pubkey_create(context, &point, secret.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
        precondition(created == 1, "a validated private key must have a public key")
        return PublicKey(uncheckedUncompressed: serialize(point))
    }

    private static func serialize(_ point: secp256k1_pubkey) -> [UInt8] {
        var point = point
        var output = [UInt8](repeating: 0, count: 65)
        var length = 65
        _ = secp256k1_ec_pubkey_serialize(context, &output, &length, &point, UInt32(SECP256K1_EC_UNCOMPRESSED))
        return output
    }

    static func serializeUncompressed(parsing bytes: [UInt8]) -> [UInt8]? {
        var point = secp256k1_pubkey()
        guard secp256k1_ec_pubkey_parse(context, &point, bytes, bytes.count) == 1 else { return nil }
        return serialize(point)
    }

    /// Deterministic (RFC 6979) recoverable signature of a 32-byte digest. libsecp256k1 always returns low s.
    public static func sign(digest: Bytes32, with key: PrivateKey) -> Signature {
        var signature = secp256k1_ecdsa_recoverable_signature()
        let signed = key.withUnsafeBytes { secret in
            secp256k1_ecdsa_sign_recoverable(
                context, &signature, digest.bytes, secret.baseAddress!.assumingMemoryBound(to: UInt8.self), nil, nil)
        }
        precondition(signed == 1, "signing with a validated key and the default nonce function cannot fail")
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64) { compact in
            var recoveryId: Int32 = 0
            secp256k1_ecdsa_recoverable_signature_serialize_compact(
                context, compact.baseAddress!, &recoveryId, &signature)
            return Signature(
                uncheckedR: UInt256(bigEndianBuffer: UnsafeBufferPointer(rebasing: compact[0..<32]))!,
                s: UInt256(bigEndianBuffer: UnsafeBufferPointer(rebasing: compact[32..<64]))!,
                recoveryId: UInt8(recoveryId))
        }
    }

    /// The public key that produced `signature` over `digest`.
    public static func recoverPublicKey(digest: Bytes32, signature: Signature) throws(Secp256k1Error) -> PublicKey {
        var recoverable = secp256k1_ecdsa_recoverable_signature()
        guard
            secp256k1_ecdsa_recoverable_signature_parse_compact(
                context, &recoverable, signature.compact, Int32(signature.recoveryId)) == 1
        else { throw .invalidSignature }
        var point = secp256k1_pubkey()
        guard secp256k1_ecdsa_recover(context, &point, &recoverable, digest.bytes) == 1 else { throw .recoveryFailed }
        return PublicKey(uncheckedUncompressed: serialize(point))
    }

    public static func recoverAddress(digest: Bytes32, signature: Signature) throws(Secp256k1Error) -> Address {
        Address(publicKey: try recoverPublicKey(digest: digest, signature: signature))
    }

    /// Turns a backend's bare (r, s) into a canonical `Signature`: s is folded into the lower half (n − s), then
    /// the recovery id is found by trial — the one whose recovered key is the backend's public key. Verifying by
    /// recovery, not by comparing bytes, is what makes non-deterministic signers (KMS) work.
    public static func signature(
        r: UInt256, s: UInt256, digest: Bytes32, publicKey: PublicKey
    )
        throws(Secp256k1Error) -> Signature
    {
        guard !r.isZero, !s.isZero, r < order, s < order else { throw .invalidSignature }
        let lowS = s > halfOrder ? order - s : s
        for recoveryId: UInt8 in 0...1 {
            let candidate = Signature(uncheckedR: r, s: lowS, recoveryId: recoveryId)
            if let recovered = try? recoverPublicKey(digest: digest, signature: candidate), recovered == publicKey {
                return candidate
            }
        }
        throw .signatureDoesNotMatchKey
    }

    /// Parses a DER `SEQUENCE { INTEGER r, INTEGER s }` (AWS KMS's `Signature`).
    public static func parseDER(_ der: some Collection<UInt8>) throws(Secp256k1Error) -> (r: UInt256, s: UInt256) {
        let bytes = Array(der)
        var signature = secp256k1_ecdsa_signature()
        guard secp256k1_ecdsa_signature_parse_der(context, &signature, bytes, bytes.count) == 1 else {
            throw .invalidDER
        }
        var compact = [UInt8](repeating: 0, count: 64)
        secp256k1_ecdsa_signature_serialize_compact(context, &compact, &signature)
        return (UInt256(bigEndian: compact[0..<32])!, UInt256(bigEndian: compact[32..<64])!)
    }

    /// Parses raw 64-byte r ‖ s (PKCS#11 `CKM_ECDSA`, Azure `ES256K`).
    public static func parseCompact(_ raw: some Collection<UInt8>) throws(Secp256k1Error) -> (r: UInt256, s: UInt256) {
        let bytes = Array(raw)
        guard bytes.count == 64 else { throw .invalidSignature }
        return (UInt256(bigEndian: bytes[0..<32])!, UInt256(bigEndian: bytes[32..<64])!)
    }
}
