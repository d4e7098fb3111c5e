/// A normalised ECDSA signature over secp256k1 with its recovery id: what every backend's output becomes.
///
/// `s` is always in the lower half of the curve order (EIP-2; libsecp256k1 and nodes reject high s), and
/// `recoveryId` (0 or 1) says which of the two candidate public keys signed — the "v" that Ethereum needs and that
/// HSMs and cloud KMSs do not return.
public struct Signature: Sendable, Hashable, CustomStringConvertible {
    public let r: UInt256
    public let s: UInt256
    public let recoveryId: UInt8

    /// Validates that r and s are in [1, n) and s ≤ n/2 and the recovery id is 0 or 1.
    public init(r: UInt256, s: UInt256, recoveryId: UInt8) throws(Secp256k1Error) {
        guard recoveryId <= 1, !r.isZero, !s.isZero, r < Secp256k1.order, s <= Secp256k1.halfOrder else {
            throw .invalidSignature
        }
        self.r = r
        self.s = s
        self.recoveryId = recoveryId
    }

    init(uncheckedR r: UInt256, s: UInt256, recoveryId: UInt8) {
        self.r = r
        self.s = s
        self.recoveryId = recoveryId
    }

    /// `v` for EIP-191 / EIP-712 / pre-155 signatures: 27 or 28.
    public var legacyV: UInt8 { 27 + recoveryId }

    /// `v` for an EIP-155 legacy transaction: 35 + 2·chainId + recoveryId.
    public func eip155V(chainId: UInt64) -> UInt256 {
        UInt256(chainId) * 2 + UInt256(35 + UInt64(recoveryId))
    }

    /// 64 bytes r ‖ s.
    public var compact: [UInt8] { r.bigEndianBytes + s.bigEndianBytes }

    /// 65 bytes r ‖ s ‖ v with v = 27/28, the `personal_sign` / `eth_signTypedData_v4` result.
    public var rsv: [UInt8] { compact + [legacyV] }

    /// Parses the 65-byte r ‖ s ‖ v form (v as 0/1 or 27/28).
    public init(rsv bytes: some Collection<UInt8>) throws(Secp256k1Error) {
        let array = Array(bytes)
        guard array.count == 65 else { throw .invalidSignature }
        let v = array[64]
        let recoveryId: UInt8
        switch v {
        case 0, 1: recoveryId = v
        case 27, 28: recoveryId = v - 27
        default: throw .invalidSignature
        }
        try self.init(
            r: UInt256(bigEndian: array[0..<32])!, s: UInt256(bigEndian: array[32..<64])!, recoveryId: recoveryId)
    }

    public var description: String { Hex.encode(rsv) }
}
