/// A 20-byte account address. Compared as bytes; EIP-55 checksummed only when printed.
public struct Address: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init?(_ bytes: some Collection<UInt8>) {
        guard bytes.count == 20 else { return nil }
        self.bytes = Array(bytes)
    }

    /// Parses `0x` + 40 hex digits. All-lowercase and all-uppercase are accepted as they are; a mixed-case input is a
    /// checksum claim (EIP-55) and is rejected when the claim is wrong — a typo must not send funds elsewhere.
    public init(hex: String) throws(HexError) {
        let bytes = try Hex.decode(hex, byteCount: 20)
        self.bytes = bytes
        let letters = hex.utf8.dropFirst(2).filter { $0 >= UInt8(ascii: "A") }
        let hasLower = letters.contains { $0 >= UInt8(ascii: "a") }
        let hasUpper = letters.contains { $0 <= UInt8(ascii: "F") }
        if hasLower && hasUpper && hex.dropFirst(2) != checksummed.dropFirst(2) {
            throw .badChecksum
        }
    }

    /// The address of an uncompressed secp256k1 public key: the last 20 bytes of keccak256(X ‖ Y).
    public init(publicKey: PublicKey) {
        let hash = Keccak256.hash(publicKey.uncompressed.dropFirst())
        self.bytes = Array(hash.bytes[12...])
    }

    /// EIP-55 mixed-case checksum encoding.
    public var checksummed: String {
        let lower = Array(Hex.encode(bytes).utf8.dropFirst(2))
        let hash = Keccak256.hash(lower).bytes
        var output: [UInt8] = [UInt8(ascii: "0"), UInt8(ascii: "x")]
        for (index, character) in lower.enumerated() {
            let nibble = index % 2 == 0 ? hash[index / 2] >> 4 : hash[index / 2] & 0x0F
            if character >= UInt8(ascii: "a") && nibble >= 8 {
                output.append(character - 0x20)
            } else {
                output.append(character)
            }
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// Lowercase `0x` form (what some backends, such as the Vault ethsign plugin, require as a key).
    public var lowercaseHex: String { Hex.encode(bytes) }

    public var description: String { checksummed }

    public static func < (lhs: Address, rhs: Address) -> Bool { lhs.bytes.lexicographicallyPrecedes(rhs.bytes) }
}
