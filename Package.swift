// swift-tools-version:6.0
import PackageDescription

// Rooms of the house (see README.md, "Architecture"): pure value modules at the bottom, I/O at the edges.
let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny")
]

/// A package by its GitHub path and the lowest version it is used at (the machines mirror these URLs).
func github(_ path: String, _ version: Version) -> Package.Dependency {
    .package(url: "https://github.com/\(path).git", from: version)
}

// Products of the packages below, by the role they play in a target.
func nio(_ names: String...) -> [Target.Dependency] {
    names.map { .product(name: $0, package: "swift-nio") }
}
let log: Target.Dependency = .product(name: "Logging", package: "swift-log")
let lifecycle: Target.Dependency = .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")
let nioSSL: Target.Dependency = .product(name: "NIOSSL", package: "swift-nio-ssl")
let httpClient: Target.Dependency = .product(name: "AsyncHTTPClient", package: "async-http-client")
let crypto: Target.Dependency = .product(name: "Crypto", package: "swift-crypto")
let argumentParser: Target.Dependency = .product(name: "ArgumentParser", package: "swift-argument-parser")
/// What a key backend that speaks REST over HTTPS (Azure Key Vault, Vault) links.
let remoteBackend: [Target.Dependency] =
    ["Ethereum", "JSON", "Signers", httpClient, nioSSL, log, lifecycle] + nio("NIOCore", "NIOHTTP1")
/// What a WebSocket edge (the gateway's server, its node client, the load-test clients) links.
let webSocketEdge = nio("NIOCore", "NIOPosix", "NIOHTTP1", "NIOWebSocket")

let package = Package(
    name: "SignerGateway",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "signer-gateway", targets: ["signer-gateway"]),
        .library(name: "Ethereum", targets: ["Ethereum"]),
        .library(name: "JSONRPC", targets: ["JSONRPC"]),
    ],
    dependencies: [
        // The edge, and the backends' HTTP.
        github("apple/swift-nio", "2.101.3"), github("apple/swift-nio-ssl", "2.37.6"),
        github("swift-server/async-http-client", "1.37.0"),
        // Operating it: logs, services, metrics; the command line and its configuration file.
        github("apple/swift-log", "1.16.2"), github("swift-server/swift-service-lifecycle", "2.13.0"),
        github("apple/swift-metrics", "2.13.0"), github("swift-server/swift-prometheus", "2.4.1"),
        github("apple/swift-argument-parser", "1.8.2"), github("jpsim/Yams", "6.2.2"),
        // Keys and records: hashes and ciphers, DER public keys, the SQLite journal.
        github("apple/swift-crypto", "4.5.2"), github("apple/swift-asn1", "1.7.4"),
        github("groue/GRDB.swift", "7.10.0"),
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

        // Key backends behind `protocol KeyBackend`, the wallet that routes an address to its backend, and the
        // keystore backend. Backends that link or load something heavy are targets of their own, in folders here.
        .target(
            name: "Signers",
            dependencies: [
                "Ethereum", "JSON", crypto, log, lifecycle, httpClient,
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            exclude: ["PKCS11", "AWSKMS", "Azure", "Vault"],
            swiftSettings: strict
        ),
        // The PKCS#11 header (Debian `libp11-kit-dev`); the module itself is loaded with dlopen at run time.
        .systemLibrary(name: "CPKCS11", providers: [.apt(["libp11-kit-dev"])]),
        // PKCS#11 tokens: AWS CloudHSM, SoftHSM2, any HSM with a PKCS#11 module.
        // AWS KMS: JSON 1.1 over AsyncHTTPClient, signed with our SigV4.
        .target(
            name: "SignersAWSKMS",
            dependencies: ["Ethereum", "JSON", "Signers", httpClient, crypto, log] + nio("NIOCore", "NIOHTTP1"),
            path: "Sources/Signers/AWSKMS",
            swiftSettings: strict
        ),
        // Azure Key Vault: REST 7.4 over AsyncHTTPClient, tokens from Entra ID (client secret or managed identity).
        .target(
            name: "SignersAzure",
            dependencies: remoteBackend,
            path: "Sources/Signers/Azure",
            swiftSettings: strict
        ),
        // HashiCorp Vault / OpenBao: the ethsign plugin (whole legacy transactions) or KV v2 keys signed in memory.
        .target(
            name: "SignersVault",
            dependencies: remoteBackend,
            path: "Sources/Signers/Vault",
            swiftSettings: strict
        ),
        .target(
            name: "SignersPKCS11",
            dependencies: ["CPKCS11", "Ethereum", "Signers", log] + nio("NIOPosix"),
            path: "Sources/Signers/PKCS11",
            swiftSettings: strict
        ),
        // The send pipeline: nonce lanes, filling, ordered submission, receipts, the journal.
        .target(
            name: "Submission",
            dependencies: [
                "Ethereum", "JSON", "JSONRPC", "Signers", "Node", log, lifecycle,
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: strict
        ),
        // The upstream node: one multiplexed WebSocket connection, id remapping, reconnect with backoff.
        .target(
            name: "Node",
            dependencies: ["JSON", "JSONRPC", nioSSL, httpClient, log, lifecycle] + webSocketEdge,
            swiftSettings: strict
        ),
        // The NIO edge: HTTP + WebSocket JSON-RPC server, sessions, method routing, subscription fan-out.
        .target(
            name: "Gateway",
            dependencies: [
                "JSON", "JSONRPC", "Ethereum", "Node", "Signers", "SignersAWSKMS", "SignersAzure", "SignersPKCS11",
                "SignersVault", "Submission",
                nioSSL, log, lifecycle, crypto, .product(name: "Yams", package: "Yams"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ] + webSocketEdge,
            swiftSettings: strict
        ),
        .executableTarget(
            name: "signer-gateway",
            dependencies: ["Gateway", argumentParser, log, lifecycle],
            swiftSettings: strict
        ),
        // The load-test harness: many pipelined WebSocket clients, and the raw NIO echo server to compare against.
        .executableTarget(
            name: "loadtest",
            dependencies: ["JSON", "JSONRPC", "Ethereum", "Signers", "Gateway", log, argumentParser] + webSocketEdge,
            path: "loadtest",
            exclude: ["compare.sh", "sign-benchmark.sh", "pipeline-benchmark.sh", "lib.sh", "README.md"],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "ethereum-benchmark",
            dependencies: ["Ethereum", "CSecp256k1"],
            path: "Sources/EthereumBenchmark",
            swiftSettings: strict
        ),

        .testTarget(name: "JSONTests", dependencies: ["JSON"], swiftSettings: strict),
        .testTarget(
            name: "EthereumTests",
            dependencies: ["Ethereum", "JSON", "TestSupport"],
            resources: [.copy("Fixtures")],
            swiftSettings: strict
        ),
        .testTarget(name: "JSONRPCTests", dependencies: ["JSONRPC", "JSON"], swiftSettings: strict),
        // Test doubles (a scripted node, an in-memory key backend) and helpers that start real servers (the dev
        // node, the gateway, Python clients) for live tests, killed by pid.
        .target(
            name: "TestSupport",
            dependencies: ["Ethereum", "JSON", "JSONRPC", "Node", "Signers", "Submission", httpClient, nioSSL]
                + nio("NIOCore", "NIOHTTP1"),
            path: "Tests/TestSupport",
            swiftSettings: strict
        ),
        .testTarget(
            name: "SignersTests",
            dependencies: [
                "Signers", "SignersPKCS11", "SignersAWSKMS", "SignersAzure", "SignersVault", "Ethereum", "JSON",
                "TestSupport",
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "SubmissionTests",
            dependencies: ["Submission", "Signers", "Ethereum", "JSON", "JSONRPC", "Node", "TestSupport"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "GatewayTests",
            dependencies: [
                "Gateway", "Node", "JSON", "JSONRPC", "Ethereum", "Signers", "Submission", "TestSupport",
                log, lifecycle,
            ] + nio("NIOCore", "NIOPosix", "NIOEmbedded", "NIOWebSocket"),
            swiftSettings: strict
        ),
    ],
    swiftLanguageModes: [.v6]
)
