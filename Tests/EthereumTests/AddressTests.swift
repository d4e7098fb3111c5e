import Ethereum
import Testing

@Suite struct AddressTests {
    // The examples of EIP-55 itself.
    @Test(arguments: [
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB", "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
        "0x52908400098527886E0F7030069857D2E4169EE7", "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
        "0xde709f2102306220921060314715629080e2fb77", "0x27b1fdb04752bbc536007a920d24acb045561c26",
    ])
    func checksumMatchesEIP55(_ text: String) throws {
        let address = try Address(hex: text)
        let mixed = text.dropFirst(2).contains { $0.isUppercase } && text.dropFirst(2).contains { $0.isLowercase }
        if mixed { #expect(address.checksummed == text) }
        #expect(try Address(hex: address.checksummed) == address)
        #expect(try Address(hex: text.lowercased()) == address)
    }

    @Test func wrongChecksumIsRejected() {
        #expect(throws: HexError.badChecksum) { try Address(hex: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD") }
    }

    @Test func lengthIsChecked() {
        #expect(throws: HexError.wrongLength(expected: 20, actual: 19)) {
            try Address(hex: "0x5aaeb6053f3e94c9b9a09f33669435e7ef1bea")
        }
    }

    @Test func addressOfKnownKey() throws {
        let key = try PrivateKey(hex: "0x0000000000000000000000000000000000000000000000000000000000000001")
        #expect(key.address.checksummed == "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf")
    }
}
