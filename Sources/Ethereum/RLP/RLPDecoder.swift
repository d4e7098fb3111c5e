/// A strict RLP decoder: exactly one item, canonical sizes only, bounded nesting.
public enum RLPDecoder {
    public static let defaultMaximumDepth = 64

    public static func decode(
        _ input: some Collection<UInt8>, maximumDepth: Int = defaultMaximumDepth
    )
        throws(RLPError) -> RLPItem
    {
        let bytes = Array(input)
        var offset = 0
        let item = try decodeItem(bytes, &offset, end: bytes.count, depth: 0, maximumDepth: maximumDepth)
        guard offset == bytes.count else { throw .trailingBytes }
        return item
    }

    private static func decodeItem(
        _ bytes: [UInt8], _ offset: inout Int, end: Int, depth: Int, maximumDepth: Int
    ) throws(RLPError) -> RLPItem {
        guard offset < end else { throw .truncated }
        let prefix = bytes[offset]
        switch prefix {
        case 0x00..<0x80:
            offset += 1
            return .bytes([prefix])
        case 0x80..<0xB8:
            let length = Int(prefix - 0x80)
            offset += 1
            guard end - offset >= length else { throw .truncated }
            if length == 1 && bytes[offset] < 0x80 { throw .singleByteAsString }
            defer { offset += length }
            return .bytes(Array(bytes[offset..<(offset + length)]))
        case 0xB8..<0xC0:
            let length = try readLongLength(bytes, &offset, end: end, lengthOfLength: Int(prefix - 0xB7))
            guard end - offset >= length else { throw .truncated }
            defer { offset += length }
            return .bytes(Array(bytes[offset..<(offset + length)]))
        default:
            guard depth < maximumDepth else { throw .tooDeep(limit: maximumDepth) }
            let length: Int
            if prefix < 0xF8 {
                length = Int(prefix - 0xC0)
                offset += 1
            } else {
                length = try readLongLength(bytes, &offset, end: end, lengthOfLength: Int(prefix - 0xF7))
            }
            guard end - offset >= length else { throw .truncated }
            let listEnd = offset + length
            var items: [RLPItem] = []
            while offset < listEnd {
                items.append(try decodeItem(bytes, &offset, end: listEnd, depth: depth + 1, maximumDepth: maximumDepth))
            }
            return .list(items)
        }
    }

    /// Reads the big-endian length of a long string or list. Canonical means: no leading zero byte, and the length
    /// is at least 56 (shorter payloads must use the one-byte form).
    private static func readLongLength(
        _ bytes: [UInt8], _ offset: inout Int, end: Int, lengthOfLength: Int
    )
        throws(RLPError) -> Int
    {
        offset += 1
        guard end - offset >= lengthOfLength else { throw .truncated }
        guard bytes[offset] != 0 else { throw .nonCanonicalSize }
        guard lengthOfLength <= 4 else { throw .truncated }  // > 4 GiB can never be backed by the input.
        var length = 0
        for index in 0..<lengthOfLength {
            length = length << 8 | Int(bytes[offset + index])
        }
        offset += lengthOfLength
        guard length >= 56 else { throw .nonCanonicalSize }
        return length
    }
}

extension RLPItem {
    /// The byte string of a string item.
    public func bytesValue() throws(RLPError) -> [UInt8] {
        guard case .bytes(let bytes) = self else { throw .expectedBytes }
        return bytes
    }

    public func listValue() throws(RLPError) -> [RLPItem] {
        guard case .list(let items) = self else { throw .expectedList }
        return items
    }

    /// A canonical unsigned scalar (no leading zero byte) that fits in 64 bits.
    public func uint64Value() throws(RLPError) -> UInt64 {
        let bytes = try canonicalScalarBytes()
        guard bytes.count <= 8 else { throw .integerTooLarge(bits: 64) }
        return bytes.reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// A canonical unsigned scalar that fits in 256 bits.
    public func uint256Value() throws(RLPError) -> UInt256 {
        let bytes = try canonicalScalarBytes()
        guard bytes.count <= 32 else { throw .integerTooLarge(bits: 256) }
        return UInt256(bigEndian: bytes)!
    }

    private func canonicalScalarBytes() throws(RLPError) -> [UInt8] {
        let bytes = try bytesValue()
        if bytes.first == 0 { throw .nonCanonicalInteger }
        return bytes
    }
}
