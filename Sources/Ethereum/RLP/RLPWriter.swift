/// Appends RLP encodings to one growing buffer; lists are written in place and their header is patched in once the
/// payload length is known, so encoding a transaction builds no intermediate tree.
public struct RLPWriter: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 128) { bytes.reserveCapacity(capacity) }

    public mutating func append(bytes string: some Collection<UInt8>) {
        if string.count == 1, let only = string.first, only < 0x80 {
            bytes.append(only)
            return
        }
        appendHeader(shortBase: 0x80, length: string.count)
        bytes.append(contentsOf: string)
    }

    /// A canonical scalar: big-endian without leading zeros; zero is the empty string.
    public mutating func append(scalar value: UInt64) {
        if value == 0 {
            bytes.append(0x80)
        } else if value < 0x80 {
            bytes.append(UInt8(value))
        } else {
            let length = 8 - value.leadingZeroBitCount / 8
            bytes.append(0x80 + UInt8(length))
            for shift in stride(from: (length - 1) * 8, through: 0, by: -8) {
                bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift)))
            }
        }
    }

    public mutating func append(scalar value: UInt256) {
        if let small = value.uint64 {
            append(scalar: small)
            return
        }
        // More than 8 bytes, so always the 0x80+length form; written straight from the limbs.
        let length = (value.bitLength + 7) / 8
        bytes.append(0x80 + UInt8(length))
        withUnsafeTemporaryAllocation(byteCount: 32, alignment: 8) { scratch in
            value.writeBigEndian(into: scratch)
            bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: scratch[(32 - length)...]))
        }
    }

    /// Writes a list whose items `body` appends.
    public mutating func appendList(_ body: (inout RLPWriter) -> Void) {
        let start = bytes.count
        body(&self)
        let length = bytes.count - start
        var header = RLPWriter(capacity: 9)
        header.appendHeader(shortBase: 0xC0, length: length)
        bytes.insert(contentsOf: header.bytes, at: start)
    }

    public mutating func append(_ item: RLPItem) {
        switch item {
        case .bytes(let string): append(bytes: string)
        case .list(let items): appendList { writer in for item in items { writer.append(item) } }
        }
    }

    /// Bytes already RLP-encoded (e.g. a nested structure encoded elsewhere).
    public mutating func append(encoded: some Collection<UInt8>) {
        bytes.append(contentsOf: encoded)
    }

    mutating func appendHeader(shortBase: UInt8, length: Int) {
        if length < 56 {
            bytes.append(shortBase + UInt8(length))
        } else {
            let lengthBytes = 8 - UInt64(length).leadingZeroBitCount / 8
            bytes.append(shortBase + 55 + UInt8(lengthBytes))
            for shift in stride(from: (lengthBytes - 1) * 8, through: 0, by: -8) {
                bytes.append(UInt8(truncatingIfNeeded: length >> shift))
            }
        }
    }
}
