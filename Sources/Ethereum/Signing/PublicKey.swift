/// An uncompressed secp256k1 public point: 65 bytes, `04 ‖ X ‖ Y`.
public struct PublicKey: Sendable, Hashable {
    public let uncompressed: [UInt8]

    /// Accepts the uncompressed (65 bytes, 0x04 prefix), compressed (33 bytes) or raw `X ‖ Y` (64 bytes) forms and
    /// checks that the point is on the curve.
    public init(bytes: some Collection<UInt8>) throws(Secp256k1Error) {
        var input = Array(bytes)
        if input.count == 64 { input.insert(0x04, at: 0) }
        guard let normalized = Secp256k1.serializeUncompressed(parsing: input) else { throw .invalidPublicKey }
        uncompressed = normalized
    }

    init(uncheckedUncompressed bytes: [UInt8]) {
        uncompressed = bytes
    }

    public var address: Address { Address(publicKey: self) }
}
