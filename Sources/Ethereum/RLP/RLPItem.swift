/// A decoded RLP item: a byte string or a list of items (Ethereum Yellow Paper, appendix B).
public enum RLPItem: Sendable, Hashable {
    case bytes([UInt8])
    case list([RLPItem])

    public static func scalar(_ value: UInt64) -> RLPItem {
        var bytes: [UInt8] = []
        var remaining = value
        while remaining != 0 {
            bytes.insert(UInt8(truncatingIfNeeded: remaining), at: 0)
            remaining >>= 8
        }
        return .bytes(bytes)
    }

    public static func scalar(_ value: UInt256) -> RLPItem { .bytes(value.minimalBigEndianBytes) }

    public var encoded: [UInt8] {
        var writer = RLPWriter()
        writer.append(self)
        return writer.bytes
    }
}
