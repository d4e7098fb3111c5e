import Ethereum
import Foundation
import Gateway
import Signers
import TestSupport
import Testing

/// Each key backend behind the whole gateway, configured as an operator would (a `backends:` entry, nothing
/// injected): web3.py clients send through it to a real EVM and check every signature with eth-account.
@Suite(.serialized, .tags(.live)) struct KeyBackendsLiveTests {
    /// A configured backend and the addresses its keys must have, derived outside the gateway.
    struct Subject {
        let entry: BackendConfiguration
        let addresses: [String]
    }

    /// Runs `body` with a backend of `type` on its real server (files, SoftHSM, moto KMS), stopped afterwards.
    static func withSubject(_ type: BackendType, _ body: (Subject) async throws -> Void) async throws {
        switch type {
        case .keystore:
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("keystore-live-\(UUID())")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let keys = (0..<3).map { _ in PrivateKey.random() }
            for key in keys {
                _ = try KeystoreBackend.write(key, password: Array("pw".utf8), kdf: .light, to: directory.path)
            }
            try await body(
                Subject(
                    entry: BackendConfiguration(
                        type: .keystore, name: "files", values: ["directory": directory.path, "password": "pw"]),
                    addresses: keys.map(\.address.lowercaseHex)))
        case .pkcs11:
            let token = try await SoftHSMToken.shared()
            try await body(
                Subject(
                    entry: BackendConfiguration(
                        type: .pkcs11, name: "hsm",
                        values: [
                            "module": SoftHSMToken.modulePath, "tokenLabel": SoftHSMToken.liveLabel,
                            "pin": SoftHSMToken.pin, "keyLabels": "signer-*", "sessions": "4",
                        ]),
                    addresses: token.liveSigners.map(\.address)))
        case .awsKms:
            let server = try await KMSServer.start(keyCount: 3)
            defer { server.stop() }
            try await body(
                Subject(
                    entry: BackendConfiguration(
                        type: .awsKms, name: "kms",
                        values: [
                            "region": server.region, "endpoint": server.endpoint,
                            "accessKeyId": server.accessKeyID, "secretAccessKey": server.secretAccessKey,
                        ]),
                    addresses: server.keys.map(\.address)))
        }
    }

    /// 500 sends over the backend's three addresses from ten connections: every one mined, each address's nonces
    /// contiguous from 0; then personal_sign, eth_sign, eth_signTypedData_v4 and eth_signTransaction recovered by
    /// eth-account to the address, and an address no backend holds refused with 4100.
    @Test(arguments: [BackendType.keystore, .pkcs11, .awsKms])
    func sendsAndSignsThroughTheGateway(type: BackendType) async throws {
        try await Self.withSubject(type) { subject in
            let node = try await Devnode.start(fund: subject.addresses)
            defer { node.stop() }
            try await withLiveGateway(node: node, configure: { $0.backends = [subject.entry] }) { gateway in
                let listed = Set(gateway.application.wallet.addresses.map(\.lowercaseHex))
                #expect(listed == Set(subject.addresses), "the wallet lists what the \(type) server holds")
                let sends = try await ClientScenario.run(
                    "send_many.py",
                    [
                        "--url", gateway.url, "--from", subject.addresses.joined(separator: ","),
                        "--connections", "10", "--total", "500", "--watch-receipts", "--timeout", "240",
                    ], timeout: .seconds(300))
                #expect(sends.exitCode == 0, "\(sends.diagnostics)")
                #expect(sends.result?["mined"] as? Int == 500)
                let perAddress = sends.result?["per_address"] as? [String: [String: Any]] ?? [:]
                #expect(perAddress.count == 3)
                #expect(
                    perAddress.values.allSatisfy { $0["contiguous"] as? Bool == true && $0["first_nonce"] as? Int == 0 })
                print("\(type) backend: \(sends.result?["tx_per_second"] ?? "?") tx/s end to end (500 sends)")

                let signatures = try await ClientScenario.run(
                    "verify_signatures.py",
                    ["--url", gateway.url, "--from", subject.addresses[0], "--chain-id", String(node.chainID)])
                #expect(signatures.exitCode == 0, "\(signatures.diagnostics)")
            }
        }
    }
}
