import Foundation

/// SplitMix64: reproducible randomness for property tests. A fixed seed in the test, or `forTest`, which takes
/// `TEST_SEED` from the environment (to replay a failure) or a fresh one, and prints it either way.
public struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    public let seed: UInt64

    public init(seed: UInt64) {
        self.seed = seed
        state = seed
    }

    public static func forTest(_ name: String) -> SeededGenerator {
        let seed =
            ProcessInfo.processInfo.environment["TEST_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 0...UInt64.max)
        print("\(name): seed \(seed) (TEST_SEED=\(seed) replays it)")
        return SeededGenerator(seed: seed)
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
