import Ethereum
import Testing

@Suite struct KeccakTests {
    @Test(arguments: [
        ("", "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"),
        ("abc", "0x4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"),
        ("hello world", "0x47173285a8d7341e5e972fc677286384f802f8ef42a5ec5f03bbfa254cb01fad"),
        (
            "The quick brown fox jumps over the lazy dog",
            "0x4d741b6f1eb29cb2a9b9911c82f56fa8d73b04959d3d9d222895df6c0b28aa15"
        ),
    ])
    func knownVectors(input: String, expected: String) {
        #expect(Keccak256.hash(Array(input.utf8)).hex == expected)
    }

    @Test func isNotSHA3() {
        // SHA3-256("") = a7ffc6f8…; Ethereum's Keccak-256 pads differently.
        #expect(Keccak256.hash([UInt8]()).hex != "0xa7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a")
    }

    @Test func blockBoundariesAgreeBetweenContiguousAndSequenceInput() {
        // Lengths around the 136-byte rate exercise the padding edge cases (pad byte in the last rate byte).
        for length in [0, 1, 134, 135, 136, 137, 271, 272, 273, 1000] {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
            #expect(Keccak256.hash(bytes) == Keccak256.hash(AnySequence(bytes)))
        }
    }
}
