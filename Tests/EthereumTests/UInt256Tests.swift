import Ethereum
import TestSupport
import Testing

@Suite struct UInt256Tests {
    @Test func textForms() throws {
        let max = "115792089237316195423570985008687907853269984665640564039457584007913129639935"
        #expect(UInt256.max.decimalString == max)
        #expect(UInt256(decimal: max) == .max)
        #expect(UInt256(decimal: max.dropLast() + "6") == nil)
        #expect(UInt256.max.hexQuantity == "0x" + String(repeating: "f", count: 64))
        #expect(UInt256.zero.hexQuantity == "0x0")
        #expect(try UInt256(hexQuantity: "0x10000000000000000") == UInt256(limbs: (0, 1, 0, 0)))
        #expect(
            UInt256(decimal: "10000000000000000000000000000000000000000")!.decimalString
                == "10000000000000000000000000000000000000000")
        #expect(UInt256(decimal: "1000000000000000000")!.decimalString == "1000000000000000000")
        #expect(throws: HexError.tooLarge(bits: 256)) {
            try UInt256(hexQuantity: "0x1" + String(repeating: "0", count: 64))
        }
    }

    @Test func arithmeticAgreesWithMachineWords() {
        var generator = SeededGenerator(seed: 11)
        for _ in 0..<10_000 {
            let a = UInt64.random(in: 0...UInt64(UInt32.max), using: &generator)
            let b = UInt64.random(in: 0...UInt64(UInt32.max), using: &generator)
            #expect(UInt256(a) * UInt256(b) == UInt256(a * b))
            #expect(UInt256(a) + UInt256(b) == UInt256(a + b))
            #expect((UInt256(a) < UInt256(b)) == (a < b))
            let wide = UInt256(limbs: (a, b, a ^ b, b))
            let (q, r) = wide.quotientAndRemainder(dividingBy: 1_000_000_007)
            #expect(q * UInt256(1_000_000_007) + UInt256(r) == wide)
            #expect(UInt256(decimal: wide.decimalString) == wide)
            #expect(try! UInt256(hexQuantity: wide.hexQuantity) == wide)
            #expect(UInt256(bigEndian: wide.minimalBigEndianBytes) == wide)
        }
    }

    @Test func overflowIsReported() {
        #expect(UInt256.max.addingReportingOverflow(1).overflow)
        #expect(UInt256.zero.subtractingReportingOverflow(1).overflow)
        #expect(UInt256(powerOfTwo: 128).multipliedReportingOverflow(by: UInt256(powerOfTwo: 128)).overflow)
        #expect(!UInt256(powerOfTwo: 127).multipliedReportingOverflow(by: UInt256(powerOfTwo: 128)).overflow)
        #expect(UInt256(1).twosComplement == .max)
    }
}
