// swift-tools-version:6.0
import PackageDescription

// Rooms of the house (see README.md, "Architecture"): pure value modules at the bottom, I/O at the edges.
let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "SignerGateway",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "Ethereum", targets: ["Ethereum"]),
        .library(name: "JSONRPC", targets: ["JSONRPC"]),
    ],
    targets: [
        // libsecp256k1 from Debian (`libsecp256k1-dev`): all signing and recovery.
        .systemLibrary(
            name: "CSecp256k1",
            pkgConfig: "libsecp256k1",
            providers: [.apt(["libsecp256k1-dev"])]
        ),
        // JSON values that keep numbers as written, so proxied params/results are never re-encoded.
        .target(name: "JSON", swiftSettings: strict),
        // Pure Ethereum values: hex, addresses, UInt256, keccak, RLP, transactions, signatures, EIP-191/712.
        .target(name: "Ethereum", dependencies: ["CSecp256k1", "JSON"], swiftSettings: strict),
        // Pure JSON-RPC 2.0 models and the geth-compatible error vocabulary.
        .target(name: "JSONRPC", dependencies: ["JSON"], swiftSettings: strict),

        .executableTarget(
            name: "ethereum-benchmark",
            dependencies: ["Ethereum", "CSecp256k1"],
            path: "Sources/EthereumBenchmark",
            swiftSettings: strict
        ),

        .testTarget(name: "JSONTests", dependencies: ["JSON"], swiftSettings: strict),
        .testTarget(
            name: "EthereumTests",
            dependencies: ["Ethereum", "JSON"],
            resources: [.copy("Fixtures")],
            swiftSettings: strict
        ),
        .testTarget(name: "JSONRPCTests", dependencies: ["JSONRPC", "JSON"], swiftSettings: strict),
    ],
    swiftLanguageModes: [.v6]
)
