/// An unsigned 256-bit integer: transaction values and fee fields (nonce, gas and chain id fit `UInt64`).
///
/// Four 64-bit limbs, least significant first. Only the arithmetic the gateway needs: comparisons, checked
/// add/subtract/multiply (fee × gas), division by a machine word (decimal text) and byte/hex/decimal codecs.
public struct UInt256: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Limbs, least significant first.
    public private(set) var limbs: (UInt64, UInt64, UInt64, UInt64)

    public static let zero = UInt256(limbs: (0, 0, 0, 0))
    public static let max = UInt256(limbs: (.max, .max, .max, .max))

    public init(limbs: (UInt64, UInt64, UInt64, UInt64)) { self.limbs = limbs }
    public init(_ value: UInt64) { limbs = (value, 0, 0, 0) }

    /// 2^exponent, for 0 ≤ exponent < 256.
    public init(powerOfTwo exponent: Int) {
        precondition((0..<256).contains(exponent))
        var words: [UInt64] = [0, 0, 0, 0]
        words[exponent / 64] = 1 << UInt64(exponent % 64)
        self.init(words: words)
    }

    init(words: [UInt64]) { limbs = (words[0], words[1], words[2], words[3]) }
    var words: [UInt64] { [limbs.0, limbs.1, limbs.2, limbs.3] }

    /// Big-endian bytes, at most 32 of them (leading zeros allowed); `nil` when longer and not zero-padded.
    public init?(bigEndian bytes: some Collection<UInt8>) {
        let parsed = bytes.withContiguousStorageIfAvailable { UInt256(bigEndianBuffer: $0) }
        if let parsed {
            guard let parsed else { return nil }
            self = parsed
        } else {
            guard let value = Array(bytes).withUnsafeBufferPointer({ UInt256(bigEndianBuffer: $0) }) else { return nil }
            self = value
        }
    }

    /// The signing path converts every r and s through here: no intermediate arrays.
    init?(bigEndianBuffer buffer: UnsafeBufferPointer<UInt8>) {
        var limbs: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        var index = buffer.count
        var shift = 0
        while index > 0 {
            index -= 1
            let byte = UInt64(buffer[index])
            if shift >= 256 {
                guard byte == 0 else { return nil }
                continue
            }
            let value = byte << UInt64(shift % 64)
            switch shift / 64 {
            case 0: limbs.0 |= value
            case 1: limbs.1 |= value
            case 2: limbs.2 |= value
            default: limbs.3 |= value
            }
            shift += 8
        }
        self.init(limbs: limbs)
    }

    /// Exactly 32 big-endian bytes.
    public var bigEndianBytes: [UInt8] {
        [UInt8](unsafeUninitializedCapacity: 32) { buffer, count in
            writeBigEndian(into: UnsafeMutableRawBufferPointer(buffer))
            count = 32
        }
    }

    /// Writes the 32 big-endian bytes into `buffer` (which must hold 32).
    @inline(__always)
    func writeBigEndian(into buffer: UnsafeMutableRawBufferPointer) {
        buffer.storeBytes(of: limbs.3.bigEndian, toByteOffset: 0, as: UInt64.self)
        buffer.storeBytes(of: limbs.2.bigEndian, toByteOffset: 8, as: UInt64.self)
        buffer.storeBytes(of: limbs.1.bigEndian, toByteOffset: 16, as: UInt64.self)
        buffer.storeBytes(of: limbs.0.bigEndian, toByteOffset: 24, as: UInt64.self)
    }

    /// Big-endian bytes without leading zeros; zero is the empty array (RLP's canonical scalar).
    public var minimalBigEndianBytes: [UInt8] {
        let length = (bitLength + 7) / 8
        guard length > 0 else { return [] }
        return withUnsafeTemporaryAllocation(byteCount: 32, alignment: 8) { scratch in
            writeBigEndian(into: scratch)
            return Array(UnsafeRawBufferPointer(rebasing: scratch[(32 - length)...]))
        }
    }

    public var isZero: Bool { self == .zero }

    /// The value if it fits a `UInt64`.
    public var uint64: UInt64? {
        limbs.1 == 0 && limbs.2 == 0 && limbs.3 == 0 ? limbs.0 : nil
    }

    /// Number of significant bits (0 for zero).
    public var bitLength: Int {
        if limbs.3 != 0 { return 256 - limbs.3.leadingZeroBitCount }
        if limbs.2 != 0 { return 192 - limbs.2.leadingZeroBitCount }
        if limbs.1 != 0 { return 128 - limbs.1.leadingZeroBitCount }
        return 64 - limbs.0.leadingZeroBitCount
    }

    public static func < (lhs: UInt256, rhs: UInt256) -> Bool {
        if lhs.limbs.3 != rhs.limbs.3 { return lhs.limbs.3 < rhs.limbs.3 }
        if lhs.limbs.2 != rhs.limbs.2 { return lhs.limbs.2 < rhs.limbs.2 }
        if lhs.limbs.1 != rhs.limbs.1 { return lhs.limbs.1 < rhs.limbs.1 }
        return lhs.limbs.0 < rhs.limbs.0
    }

    public static func == (lhs: UInt256, rhs: UInt256) -> Bool {
        lhs.limbs.0 == rhs.limbs.0 && lhs.limbs.1 == rhs.limbs.1 && lhs.limbs.2 == rhs.limbs.2
            && lhs.limbs.3 == rhs.limbs.3
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(limbs.0)
        hasher.combine(limbs.1)
        hasher.combine(limbs.2)
        hasher.combine(limbs.3)
    }

    public func addingReportingOverflow(_ other: UInt256) -> (partialValue: UInt256, overflow: Bool) {
        limbwise(other) { $0.addingReportingOverflow($1) }
    }

    public func subtractingReportingOverflow(_ other: UInt256) -> (partialValue: UInt256, overflow: Bool) {
        limbwise(other) { $0.subtractingReportingOverflow($1) }
    }

    /// Addition and subtraction are the same walk from the low limb up: apply `step`, then carry (or borrow) one
    /// into the next limb.
    @inline(__always)
    private func limbwise(
        _ other: UInt256, _ step: (UInt64, UInt64) -> (partialValue: UInt64, overflow: Bool)
    ) -> (partialValue: UInt256, overflow: Bool) {
        let a = words, b = other.words
        var result: [UInt64] = [0, 0, 0, 0]
        var carry = false
        for index in 0..<4 {
            let (partial, overflowed) = step(a[index], b[index])
            let (limb, carried) = step(partial, carry ? 1 : 0)
            result[index] = limb
            carry = overflowed || carried
        }
        return (UInt256(words: result), carry)
    }

    public func multipliedReportingOverflow(by other: UInt256) -> (partialValue: UInt256, overflow: Bool) {
        let a = words, b = other.words
        var result: [UInt64] = [0, 0, 0, 0, 0, 0, 0, 0]
        for i in 0..<4 where a[i] != 0 {
            var carry: UInt64 = 0
            for j in 0..<4 {
                let (high, low) = a[i].multipliedFullWidth(by: b[j])
                let (sum1, o1) = result[i + j].addingReportingOverflow(low)
                let (sum2, o2) = sum1.addingReportingOverflow(carry)
                result[i + j] = sum2
                carry = high &+ (o1 ? 1 : 0) &+ (o2 ? 1 : 0)
            }
            result[i + 4] = carry
        }
        let overflow = result[4...].contains { $0 != 0 }
        return (UInt256(words: Array(result[0..<4])), overflow)
    }

    /// Checked arithmetic: traps on overflow like Swift's integer operators.
    public static func + (lhs: UInt256, rhs: UInt256) -> UInt256 {
        let (value, overflow) = lhs.addingReportingOverflow(rhs)
        precondition(!overflow, "UInt256 addition overflow")
        return value
    }

    public static func - (lhs: UInt256, rhs: UInt256) -> UInt256 {
        let (value, overflow) = lhs.subtractingReportingOverflow(rhs)
        precondition(!overflow, "UInt256 subtraction underflow")
        return value
    }

    public static func * (lhs: UInt256, rhs: UInt256) -> UInt256 {
        let (value, overflow) = lhs.multipliedReportingOverflow(by: rhs)
        precondition(!overflow, "UInt256 multiplication overflow")
        return value
    }

    public func quotientAndRemainder(dividingBy divisor: UInt64) -> (quotient: UInt256, remainder: UInt64) {
        precondition(divisor != 0, "division by zero")
        var quotient: [UInt64] = [0, 0, 0, 0]
        var remainder: UInt64 = 0
        let dividend = words
        for index in stride(from: 3, through: 0, by: -1) {
            let (q, r) = divisor.dividingFullWidth((high: remainder, low: dividend[index]))
            quotient[index] = q
            remainder = r
        }
        return (UInt256(words: quotient), remainder)
    }

    /// Two's complement: the bit pattern of `-self` modulo 2^256 (how EIP-712 encodes negative `intN`).
    public var twosComplement: UInt256 {
        let inverted = UInt256(limbs: (~limbs.0, ~limbs.1, ~limbs.2, ~limbs.3))
        return inverted.addingReportingOverflow(UInt256(1)).partialValue
    }

    // MARK: Text

    /// Parses a JSON-RPC QUANTITY (`0x0`, no leading zeros).
    public init(hexQuantity: String) throws(HexError) {
        let bytes = try Hex.decodeQuantityBytes(hexQuantity, maxBits: 256)
        self = UInt256(bigEndian: bytes)!
    }

    /// The JSON-RPC QUANTITY form (`0x0`, no leading zeros).
    public var hexQuantity: String { Hex.encodeQuantity(bigEndian: bigEndianBytes) }

    /// Parses non-negative decimal digits; `nil` if empty, not decimal, or ≥ 2^256.
    public init?(decimal: some StringProtocol) {
        guard !decimal.isEmpty else { return nil }
        var value = UInt256.zero
        let ten = UInt256(10)
        for byte in decimal.utf8 {
            guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
            let (shifted, o1) = value.multipliedReportingOverflow(by: ten)
            let (sum, o2) = shifted.addingReportingOverflow(UInt256(UInt64(byte - UInt8(ascii: "0"))))
            guard !o1 && !o2 else { return nil }
            value = sum
        }
        self = value
    }

    public var decimalString: String {
        if isZero { return "0" }
        var digits: [UInt8] = []
        var value = self
        while !value.isZero {
            let (quotient, remainder) = value.quotientAndRemainder(dividingBy: 10_000_000_000_000_000_000)
            var chunk = remainder
            let chunkDigits = quotient.isZero ? nil : 19
            var produced = 0
            repeat {
                digits.append(UInt8(ascii: "0") + UInt8(chunk % 10))
                chunk /= 10
                produced += 1
            } while chunk != 0 || (chunkDigits != nil && produced < chunkDigits!)
            value = quotient
        }
        return String(decoding: digits.reversed(), as: UTF8.self)
    }

    public var description: String { decimalString }
}

extension UInt256: ExpressibleByIntegerLiteral {
    public init(integerLiteral value: UInt64) { self.init(value) }
}
