import CSecp256k1
import Ethereum

#if canImport(Glibc)
import Glibc
#endif

// Measures, in one run and one process, the raw C signing rate of libsecp256k1 and the full Swift path of the
// gateway's signing step (RLP + keccak + sign + signed encoding of an EIP-1559 transaction). Build with
// `swift run -c release ethereum-benchmark`; the ratio is what matters on a shared, noisy machine.

func now() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
}

/// Runs `body` repeatedly for about `seconds`, returns operations per second.
func rate(seconds: Double, _ body: (Int) -> Void) -> Double {
    var iterations = 0
    let start = now()
    var elapsed = 0.0
    repeat {
        for _ in 0..<256 { body(iterations); iterations += 1 }
        elapsed = now() - start
    } while elapsed < seconds
    return Double(iterations) / elapsed
}

let arguments = CommandLine.arguments
let seconds = arguments.count > 1 ? Double(arguments[1]) ?? 10.0 : 10.0
let key = try! PrivateKey(hex: "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
let recipient = try! Address(hex: "0x3535353535353535353535353535353535353535")

// The machine is shared and noisy: C and Swift are measured in alternating rounds and the median ratio is kept.
let context = secp256k1_context_create(UInt32(SECP256K1_CONTEXT_NONE))!
var digest = [UInt8](repeating: 0x42, count: 32)
let secret = try! Hex.decode("0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
var sink: UInt8 = 0

/// 1. Raw C: secp256k1_ecdsa_sign_recoverable on a fixed context, digest varied per iteration.
@MainActor func measureC(_ seconds: Double) -> Double {
    rate(seconds: seconds) { iteration in
        digest[0] = UInt8(truncatingIfNeeded: iteration)
        digest[1] = UInt8(truncatingIfNeeded: iteration >> 8)
        var signature = secp256k1_ecdsa_recoverable_signature()
        _ = secp256k1_ecdsa_sign_recoverable(context, &signature, digest, secret, nil, nil)
        sink ^= signature.data.0
    }
}

/// 2. The full Swift path for an EIP-1559 transfer: encode unsigned, hash, sign, encode signed, hash.
@MainActor func measureSwift(_ seconds: Double) -> Double {
    rate(seconds: seconds) { iteration in
        let transaction = Transaction.dynamicFee(
            chainId: 1, nonce: UInt64(iteration), maxPriorityFeePerGas: 1_000_000_000, maxFeePerGas: 30_000_000_000,
            gas: 21_000, to: recipient, value: 1_000_000_000_000_000)
        sink ^= transaction.signed(with: key).hash.bytes[0]
    }
}

let rounds = 5
var cRates: [Double] = [], swiftRates: [Double] = [], ratios: [Double] = []
for _ in 0..<rounds {
    let c = measureC(seconds / Double(rounds))
    let swift = measureSwift(seconds / Double(rounds))
    cRates.append(c)
    swiftRates.append(swift)
    ratios.append(swift / c)
}
func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
let cRate = median(cRates), swiftRate = median(swiftRates)

// 3. keccak-256 of 110 bytes (the size of a typical unsigned transfer).
let message = [UInt8](repeating: 0xAB, count: 110)
let keccakRate = rate(seconds: seconds / 4) { _ in sink ^= Keccak256.hash(message).bytes[0] }

print("raw C secp256k1_ecdsa_sign_recoverable: \(Int(cRate)) signatures/s")
print("keccak-256 (110 bytes):                 \(Int(keccakRate)) hashes/s")
print("Swift EIP-1559 sign path:               \(Int(swiftRate)) transactions/s")
print(
    "ratio Swift path / raw C sign:          \((median(ratios) * 1000).rounded() / 1000) (median of \(rounds) alternating rounds: \(ratios.map { (($0 * 1000).rounded() / 1000) }))"
)
if sink == 0x5A { print("") }  // keeps the optimiser from dropping the work
