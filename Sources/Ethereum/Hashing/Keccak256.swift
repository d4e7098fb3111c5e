/// Keccak-256 as Ethereum uses it: the original Keccak padding (0x01 … 0x80), not SHA3-256's (0x06 … 0x80).
/// Debian's OpenSSL 3.0 offers only SHA3, so the permutation lives here.
public enum Keccak256 {
    private static let rate = 136  // (1600 - 2 × 256) / 8 bytes

    public static func hash(_ bytes: some Sequence<UInt8>) -> Bytes32 {
        if let digest = bytes.withContiguousStorageIfAvailable({ hash(buffer: UnsafeRawBufferPointer($0)) }) {
            return digest
        }
        return Array(bytes).withUnsafeBytes { hash(buffer: $0) }
    }

    public static func hash(buffer input: UnsafeRawBufferPointer) -> Bytes32 {
        withUnsafeTemporaryAllocation(of: UInt64.self, capacity: 25) { state in
            let lanes = state.baseAddress!
            lanes.initialize(repeating: 0, count: 25)
            var offset = 0
            while input.count - offset >= rate {
                absorb(UnsafeRawBufferPointer(rebasing: input[offset..<(offset + rate)]), into: lanes)
                keccakF1600(lanes)
                offset += rate
            }
            // Final block: the remaining bytes, then Keccak's pad10*1 with domain byte 0x01 (on the stack: hashing
            // is on every signing path and should not allocate for its padding).
            withUnsafeTemporaryAllocation(byteCount: rate, alignment: 8) { block in
                block.initializeMemory(as: UInt8.self, repeating: 0)
                let remaining = input.count - offset
                if remaining > 0 {
                    block.baseAddress!.copyMemory(from: input.baseAddress! + offset, byteCount: remaining)
                }
                block[remaining] ^= 0x01
                block[rate - 1] ^= 0x80
                absorb(UnsafeRawBufferPointer(block), into: lanes)
            }
            keccakF1600(lanes)
            let digest = [UInt8](unsafeUninitializedCapacity: 32) { buffer, count in
                for index in 0..<32 {
                    buffer[index] = UInt8(truncatingIfNeeded: lanes[index / 8] >> UInt64(8 * (index % 8)))
                }
                count = 32
            }
            return Bytes32(unchecked: digest)
        }
    }

    @inline(__always)
    private static func absorb(_ block: UnsafeRawBufferPointer, into lanes: UnsafeMutablePointer<UInt64>) {
        for index in 0..<(rate / 8) {
            lanes[index] ^= UInt64(littleEndian: block.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self))
        }
    }

    private static let roundConstants: [UInt64] = [
        0x0000_0000_0000_0001, 0x0000_0000_0000_8082, 0x8000_0000_0000_808A, 0x8000_0000_8000_8000,
        0x0000_0000_0000_808B, 0x0000_0000_8000_0001, 0x8000_0000_8000_8081, 0x8000_0000_0000_8009,
        0x0000_0000_0000_008A, 0x0000_0000_0000_0088, 0x0000_0000_8000_8009, 0x0000_0000_8000_000A,
        0x0000_0000_8000_808B, 0x8000_0000_0000_008B, 0x8000_0000_0000_8089, 0x8000_0000_0000_8003,
        0x8000_0000_0000_8002, 0x8000_0000_0000_0080, 0x0000_0000_0000_800A, 0x8000_0000_8000_000A,
        0x8000_0000_8000_8081, 0x8000_0000_0000_8080, 0x0000_0000_8000_0001, 0x8000_0000_8000_8008,
    ]

    @inline(__always) private static func rotl(_ x: UInt64, _ n: UInt64) -> UInt64 {
        (x << n) | (x >> (64 &- n))
    }

    /// Keccak-f[1600] on 25 lanes (index x + 5y), with ρ and π fused into one pass over fixed offsets.
    private static func keccakF1600(_ a: UnsafeMutablePointer<UInt64>) {
        for round in 0..<24 {
            // θ
            let c0 = a[0] ^ a[5] ^ a[10] ^ a[15] ^ a[20]
            let c1 = a[1] ^ a[6] ^ a[11] ^ a[16] ^ a[21]
            let c2 = a[2] ^ a[7] ^ a[12] ^ a[17] ^ a[22]
            let c3 = a[3] ^ a[8] ^ a[13] ^ a[18] ^ a[23]
            let c4 = a[4] ^ a[9] ^ a[14] ^ a[19] ^ a[24]
            let d0 = c4 ^ rotl(c1, 1)
            let d1 = c0 ^ rotl(c2, 1)
            let d2 = c1 ^ rotl(c3, 1)
            let d3 = c2 ^ rotl(c4, 1)
            let d4 = c3 ^ rotl(c0, 1)
            // θ applied while moving lanes through ρ (rotations) and π (positions): b[y, 2x+3y] = rot(a[x, y]).
            let b0 = a[0] ^ d0
            let b10 = rotl(a[1] ^ d1, 1)
            let b20 = rotl(a[2] ^ d2, 62)
            let b5 = rotl(a[3] ^ d3, 28)
            let b15 = rotl(a[4] ^ d4, 27)
            let b16 = rotl(a[5] ^ d0, 36)
            let b1 = rotl(a[6] ^ d1, 44)
            let b11 = rotl(a[7] ^ d2, 6)
            let b21 = rotl(a[8] ^ d3, 55)
            let b6 = rotl(a[9] ^ d4, 20)
            let b7 = rotl(a[10] ^ d0, 3)
            let b17 = rotl(a[11] ^ d1, 10)
            let b2 = rotl(a[12] ^ d2, 43)
            let b12 = rotl(a[13] ^ d3, 25)
            let b22 = rotl(a[14] ^ d4, 39)
            let b23 = rotl(a[15] ^ d0, 41)
            let b8 = rotl(a[16] ^ d1, 45)
            let b18 = rotl(a[17] ^ d2, 15)
            let b3 = rotl(a[18] ^ d3, 21)
            let b13 = rotl(a[19] ^ d4, 8)
            let b14 = rotl(a[20] ^ d0, 18)
            let b24 = rotl(a[21] ^ d1, 2)
            let b9 = rotl(a[22] ^ d2, 61)
            let b19 = rotl(a[23] ^ d3, 56)
            let b4 = rotl(a[24] ^ d4, 14)
            // χ and ι
            a[0] = b0 ^ (~b1 & b2) ^ roundConstants[round]
            a[1] = b1 ^ (~b2 & b3)
            a[2] = b2 ^ (~b3 & b4)
            a[3] = b3 ^ (~b4 & b0)
            a[4] = b4 ^ (~b0 & b1)
            a[5] = b5 ^ (~b6 & b7)
            a[6] = b6 ^ (~b7 & b8)
            a[7] = b7 ^ (~b8 & b9)
            a[8] = b8 ^ (~b9 & b5)
            a[9] = b9 ^ (~b5 & b6)
            a[10] = b10 ^ (~b11 & b12)
            a[11] = b11 ^ (~b12 & b13)
            a[12] = b12 ^ (~b13 & b14)
            a[13] = b13 ^ (~b14 & b10)
            a[14] = b14 ^ (~b10 & b11)
            a[15] = b15 ^ (~b16 & b17)
            a[16] = b16 ^ (~b17 & b18)
            a[17] = b17 ^ (~b18 & b19)
            a[18] = b18 ^ (~b19 & b15)
            a[19] = b19 ^ (~b15 & b16)
            a[20] = b20 ^ (~b21 & b22)
            a[21] = b21 ^ (~b22 & b23)
            a[22] = b22 ^ (~b23 & b24)
            a[23] = b23 ^ (~b24 & b20)
            a[24] = b24 ^ (~b20 & b21)
        }
    }
}
