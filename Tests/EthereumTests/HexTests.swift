import Ethereum
import TestSupport
import Testing

@Suite struct HexTests {
    @Test func quantitiesAreStrict() throws {
        #expect(try Hex.decodeQuantity("0x0") == 0)
        #expect(try Hex.decodeQuantity("0x2a") == 42)
        #expect(try Hex.decodeQuantity("0xffffffffffffffff") == .max)
        #expect(throws: HexError.leadingZero) { try Hex.decodeQuantity("0x012a") }
        #expect(throws: HexError.leadingZero) { try Hex.decodeQuantity("0x00") }
        #expect(throws: HexError.empty) { try Hex.decodeQuantity("0x") }
        #expect(throws: HexError.missingPrefix) { try Hex.decodeQuantity("2a") }
        #expect(throws: HexError.tooLarge(bits: 64)) { try Hex.decodeQuantity("0x10000000000000000") }
        #expect(throws: HexError.invalidCharacter("g")) { try Hex.decodeQuantity("0xg") }
        #expect(Hex.encodeQuantity(0) == "0x0")
        #expect(Hex.encodeQuantity(0x1234) == "0x1234")
    }

    @Test func dataIsEvenLength() throws {
        #expect(try Hex.decode("0x") == [])
        #expect(try Hex.decode("0x00ff") == [0, 255])
        #expect(try Hex.decode("0X0A") == [10])
        #expect(throws: HexError.oddLength) { try Hex.decode("0x0") }
        #expect(throws: HexError.wrongLength(expected: 32, actual: 1)) { try Hex.decode("0x00", byteCount: 32) }
        #expect(Hex.encode([0, 1, 0xab]) == "0x0001ab")
    }

    @Test func randomRoundTrips() throws {
        var generator = SeededGenerator(seed: 7)
        for _ in 0..<5_000 {
            let count = Int.random(in: 0..<80, using: &generator)
            let bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
            #expect(try Hex.decode(Hex.encode(bytes)) == bytes)
            let value =
                UInt64.random(in: 0...UInt64.max, using: &generator) >> UInt64.random(in: 0..<64, using: &generator)
            #expect(try Hex.decodeQuantity(Hex.encodeQuantity(value)) == value)
        }
    }
}
