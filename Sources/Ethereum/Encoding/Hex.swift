/// Strict hex codecs for the two shapes JSON-RPC uses (ethereum.org "JSON-RPC API", "hex value encoding"):
/// - DATA: `0x` + an even number of hex digits, any length including zero (`0x`).
/// - QUANTITY: `0x` + the shortest hex digits; zero is `0x0`; leading zeros are rejected as geth does.
public enum Hex {
    static let lowerDigits: [UInt8] = Array("0123456789abcdef".utf8)

    @inline(__always) static func nibble(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte &- UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte &- UInt8(ascii: "a") &+ 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte &- UInt8(ascii: "A") &+ 10
        default: nil
        }
    }

    /// The digits after the mandatory `0x` prefix.
    static func digits(of string: String) throws(HexError) -> Substring.UTF8View {
        let utf8 = string.utf8
        guard utf8.count >= 2, utf8.first == UInt8(ascii: "0"),
            utf8[utf8.index(after: utf8.startIndex)] | 0x20 == UInt8(ascii: "x")
        else { throw .missingPrefix }
        return string.dropFirst(2).utf8
    }

    /// Decodes DATA: `0x` followed by an even number of hex digits.
    public static func decode(_ string: String) throws(HexError) -> [UInt8] {
        let digits = try digits(of: string)
        guard digits.count % 2 == 0 else { throw .oddLength }
        var bytes = [UInt8]()
        bytes.reserveCapacity(digits.count / 2)
        var high: UInt8? = nil
        for byte in digits {
            guard let value = nibble(byte) else { throw .invalidCharacter(Character(Unicode.Scalar(byte))) }
            if let h = high {
                bytes.append(h << 4 | value)
                high = nil
            } else {
                high = value
            }
        }
        return bytes
    }

    /// Decodes DATA of an exact length (hashes, addresses, keys).
    public static func decode(_ string: String, byteCount: Int) throws(HexError) -> [UInt8] {
        let bytes = try decode(string)
        guard bytes.count == byteCount else { throw .wrongLength(expected: byteCount, actual: bytes.count) }
        return bytes
    }

    /// Encodes bytes as DATA (`0x` + lowercase, two digits per byte).
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var output: [UInt8] = [UInt8(ascii: "0"), UInt8(ascii: "x")]
        output.reserveCapacity(2 + bytes.underestimatedCount * 2)
        for byte in bytes {
            output.append(lowerDigits[Int(byte >> 4)])
            output.append(lowerDigits[Int(byte & 0x0F)])
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// Decodes a QUANTITY into a big-endian byte string without leading zero bytes (zero → empty).
    static func decodeQuantityBytes(_ string: String, maxBits: Int) throws(HexError) -> [UInt8] {
        let digits = try digits(of: string)
        guard let first = digits.first else { throw .empty }
        if first == UInt8(ascii: "0") && digits.count > 1 { throw .leadingZero }
        guard digits.count <= maxBits / 4 else {
            throw .tooLarge(bits: maxBits)
        }
        var values = [UInt8]()
        values.reserveCapacity(digits.count)
        for byte in digits {
            guard let value = nibble(byte) else { throw .invalidCharacter(Character(Unicode.Scalar(byte))) }
            values.append(value)
        }
        if values == [0] { return [] }
        var bytes = [UInt8]()
        bytes.reserveCapacity((values.count + 1) / 2)
        var index = 0
        if values.count % 2 == 1 {
            bytes.append(values[0])
            index = 1
        }
        while index < values.count {
            bytes.append(values[index] << 4 | values[index + 1])
            index += 2
        }
        return bytes
    }

    public static func decodeQuantity(_ string: String) throws(HexError) -> UInt64 {
        let bytes = try decodeQuantityBytes(string, maxBits: 64)
        return bytes.reduce(0) { $0 << 8 | UInt64($1) }
    }

    public static func encodeQuantity(_ value: UInt64) -> String {
        "0x" + String(value, radix: 16)
    }

    /// Encodes big-endian bytes as a QUANTITY (leading zero bytes and nibbles dropped; empty or all-zero → `0x0`).
    static func encodeQuantity(bigEndian bytes: some Collection<UInt8>) -> String {
        var output: [UInt8] = [UInt8(ascii: "0"), UInt8(ascii: "x")]
        var started = false
        for byte in bytes {
            if !started {
                if byte == 0 { continue }
                started = true
                if byte < 0x10 {
                    output.append(lowerDigits[Int(byte)])
                    continue
                }
            }
            output.append(lowerDigits[Int(byte >> 4)])
            output.append(lowerDigits[Int(byte & 0x0F)])
        }
        if !started { output.append(UInt8(ascii: "0")) }
        return String(decoding: output, as: UTF8.self)
    }
}
