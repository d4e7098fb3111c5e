/// Exactly 32 bytes: hashes, digests, storage keys, signature scalars.
public struct Bytes32: Sendable, Hashable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init?(_ bytes: some Collection<UInt8>) {
        guard bytes.count == 32 else { return nil }
        self.bytes = Array(bytes)
    }

    /// For callers that have already checked the length (keccak output, fixed-size buffers).
    init(unchecked bytes: [UInt8]) {
        assert(bytes.count == 32)
        self.bytes = bytes
    }

    public static let zero = Bytes32(unchecked: [UInt8](repeating: 0, count: 32))

    public init(hex: String) throws(HexError) {
        self.bytes = try Hex.decode(hex, byteCount: 32)
    }

    public var hex: String { Hex.encode(bytes) }
    public var description: String { hex }
}
