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
        /// False for a backend that signs whole transactions only (Vault's ethsign plugin): no messages, no typed
        /// data, legacy transactions.
        var signsMessages = true

        init(
            _ type: BackendType, _ name: String, _ values: [String: String], addresses: [String],
            signsMessages: Bool = true
        ) {
            entry = BackendConfiguration(type: type, name: name, values: values)
            self.addresses = addresses
            self.signsMessages = signsMessages
        }
    }

    /// Runs `body` with a backend of `type` on its real server (files, SoftHSM, moto KMS, the Azure double, OpenBao
    /// with the ethsign plugin's API: AppRole for ethsign, a token for KV v2), stopped afterwards.
    static func withSubject(
        _ type: BackendType, vaultMode: String = "ethsign", _ body: (Subject) async throws -> Void
    ) async throws {
        switch type {
        case .keystore:
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("keystore-live-\(UUID())")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let keys = (0..<3).map { _ in PrivateKey.random() }
            for key in keys {
                _ = try KeystoreBackend.write(key, password: Array("pw".utf8), kdf: .light, to: directory.path)
            }
            let values = ["directory": directory.path, "password": "pw"]
            try await body(Subject(.keystore, "files", values, addresses: keys.map(\.address.lowercaseHex)))
        case .pkcs11:
            let token = try await SoftHSMToken.shared()
            let values = [
                "module": SoftHSMToken.modulePath, "tokenLabel": SoftHSMToken.liveLabel,
                "pin": SoftHSMToken.pin, "keyLabels": "signer-*", "sessions": "4",
            ]
            try await body(Subject(.pkcs11, "hsm", values, addresses: token.liveSigners.map(\.address)))
        case .awsKms:
            let server = try await KMSServer.start(keyCount: 3)
            defer { server.stop() }
            let values = [
                "region": server.region, "endpoint": server.endpoint,
                "accessKeyId": server.accessKeyID, "secretAccessKey": server.secretAccessKey,
            ]
            try await body(Subject(.awsKms, "kms", values, addresses: server.keys.map(\.address)))
        case .azureKeyVault:
            let server = try await AzureServer.start(keyCount: 3)
            defer { server.stop() }
            let values = [
                "vaultUrl": server.vault, "tenantId": server.tenant, "clientId": server.clientID,
                "clientSecret": server.clientSecret, "authorityHost": server.authority, "caFile": server.ca,
            ]
            try await body(Subject(.azureKeyVault, "akv", values, addresses: server.keys.map(\.address)))
        case .vault:
            let server = try await VaultServer.start()
            defer { server.stop() }
            if vaultMode == "kv2" {
                let keys = [
                    try await server.setUpKV(path: "gateway/key-0"), try await server.setUpKV(path: "gateway/key-1"),
                ]
                let values = [
                    "address": server.address, "token": server.rootToken, "mode": "kv2",
                    "paths": keys.map(\.path).joined(separator: ","),
                ]
                try await body(Subject(.vault, "vault-kv", values, addresses: keys.map(\.address)))
            } else {
                let setup = try await server.setUpEthsign(count: 3)
                let values = [
                    "address": server.address, "roleId": setup.roleID, "secretId": setup.secretID,
                    "legacyForDynamicFee": vaultMode == "ethsign-convert" ? "true" : "false",
                ]
                try await body(Subject(.vault, "vault", values, addresses: setup.accounts, signsMessages: false))
            }
        }
    }

    /// One gateway with every backend type configured as an operator would (keystore files, a PKCS#11 token, AWS
    /// KMS, Azure Key Vault, Vault's ethsign plugin, Vault KV v2 keys; two or three addresses each): 500 sends per
    /// backend from ten web3.py connections, every one mined and each address's nonces contiguous from 0; then
    /// personal_sign, eth_sign, eth_signTypedData_v4 and eth_signTransaction from one address of every digest
    /// backend recovered by eth-account to that address; and for the plugin's accounts the whole-transaction rules
    /// (legacy transactions signed by Vault, EIP-1559 refused before any nonce is taken, no messages).
    @Test func everyBackendInOneGatewaySendsAndSigns() async throws {
        try await Self.withSubject(.keystore) { keystore in
            try await Self.withSubject(.pkcs11) { hsm in
                try await Self.withSubject(.awsKms) { kms in
                    try await Self.withSubject(.azureKeyVault) { azure in
                        try await Self.withSubject(.vault) { ethsign in
                            try await Self.withSubject(.vault, vaultMode: "kv2") { kv in
                                try await Self.run([keystore, hsm, kms, azure, ethsign, kv]) { gateway, node in
                                    try await Self.checkWholeTransactionRules(ethsign, gateway: gateway, node: node)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    static func run(
        _ subjects: [Subject], perBackend: Int = 500,
        then more: (LiveGateway, Devnode) async throws -> Void = { _, _ in }
    ) async throws {
        let addresses = subjects.flatMap(\.addresses)
        let node = try await Devnode.start(fund: addresses)
        defer { node.stop() }
        try await withLiveGateway(node: node, configure: { $0.backends = subjects.map(\.entry) }) { gateway in
            _ = await eventually(timeout: .seconds(20), every: .milliseconds(50)) {
                gateway.application.wallet.addresses.count == addresses.count
            }
            let listed = gateway.application.wallet.addresses.map(\.lowercaseHex)
            #expect(Set(listed) == Set(addresses), "the wallet lists what every server holds")
            for subject in subjects {
                let names = Set(subject.addresses.compactMap {
                    gateway.application.wallet.account(for: try! Address(hex: $0))?.backend
                })
                #expect(names == [subject.entry.name])
            }
            let sends = try await ClientScenario.run(
                "send_many.py",
                [
                    "--url", gateway.url, "--from", addresses.joined(separator: ","),
                    "--connections", "10", "--total", "\(perBackend * subjects.count)", "--watch-receipts",
                    "--timeout", "400",
                ], timeout: .seconds(480))
            #expect(sends.exitCode == 0, "\(sends.diagnostics)")
            #expect(sends.result?["mined"] as? Int == perBackend * subjects.count)
            let perAddress = sends.result?["per_address"] as? [String: [String: Any]] ?? [:]
            #expect(perAddress.count == addresses.count)
            #expect(
                perAddress.values.allSatisfy { $0["contiguous"] as? Bool == true && $0["first_nonce"] as? Int == 0 })
            print(
                "\(subjects.map(\.entry.name)): \(sends.result?["tx_per_second"] ?? "?") tx/s end to end "
                    + "(\(perBackend * subjects.count) sends)")

            for subject in subjects where subject.signsMessages {
                let signatures = try await ClientScenario.run(
                    "verify_signatures.py",
                    ["--url", gateway.url, "--from", subject.addresses[0], "--chain-id", String(node.chainID)])
                #expect(signatures.exitCode == 0, "\(subject.entry.type): \(signatures.diagnostics)")
            }
            try await more(gateway, node)
        }
    }

    /// The ethsign plugin's accounts behind the gateway: eth_signTransaction answers a legacy EIP-155 transaction
    /// signed by Vault; EIP-1559 fees are refused (-32602) without a nonce taken; messages are refused.
    static func checkWholeTransactionRules(_ subject: Subject, gateway: LiveGateway, node: Devnode) async throws {
        let from = subject.addresses[0]
        let to = PrivateKey.random().address.lowercaseHex
        let signed = try await SendLiveTests.rpc(
            gateway.httpURL, "eth_signTransaction",
            #"[{"from":"\#(from)","to":"\#(to)","value":"0x5","gas":"0x5208","gasPrice":"0x3b9aca00","nonce":"0x0"}]"#)
        let result = try #require(signed["result"] as? [String: Any], "\(signed)")
        let raw = try Hex.decode(try #require(result["raw"] as? String))
        let transaction = try SignedTransaction(raw: raw)
        #expect(transaction.transaction.type == .legacy)
        #expect(transaction.transaction.chainId == node.chainID)
        #expect(try transaction.sender() == Address(hex: from))

        let before = try await node.call("eth_getTransactionCount", #"["\#(from)","pending"]"#) as? String
        let dynamic = try await SendLiveTests.rpc(
            gateway.httpURL, "eth_sendTransaction",
            #"[{"from":"\#(from)","to":"\#(to)","value":"0x1","maxFeePerGas":"0x77359400"}]"#)
        let error = dynamic["error"] as? [String: Any]
        #expect(error?["code"] as? Int == -32602)
        #expect((error?["message"] as? String)?.contains("legacy (EIP-155)") == true, "\(dynamic)")
        let after = try await node.call("eth_getTransactionCount", #"["\#(from)","pending"]"#) as? String
        #expect(before == after)
        let message = try await SendLiveTests.rpc(gateway.httpURL, "personal_sign", #"["0xdeadbeef","\#(from)"]"#)
        #expect((message["error"] as? [String: Any])?["message"] as? String != nil, "\(message)")
        #expect(message["result"] == nil)
    }

    /// With `legacyForDynamicFee: true` an EIP-1559 request to an ethsign account is mined as a legacy transaction
    /// paying gasPrice = the caller's maxFeePerGas.
    @Test func legacyForDynamicFeeSendsEIP1559RequestsAsLegacy() async throws {
        try await Self.withSubject(.vault, vaultMode: "ethsign-convert") { subject in
            let node = try await Devnode.start(fund: subject.addresses)
            defer { node.stop() }
            try await withLiveGateway(node: node, configure: { $0.backends = [subject.entry] }) { gateway in
                let from = subject.addresses[0]
                let answer = try await SendLiveTests.rpc(
                    gateway.httpURL, "eth_sendTransaction",
                    #"[{"from":"\#(from)","to":"\#(subject.addresses[1])","value":"0x1","#
                        + #""maxFeePerGas":"0x77359400","maxPriorityFeePerGas":"0x1"}]"#)
                let hash = try #require(answer["result"] as? String, "\(answer)")
                let mined = await eventually(timeout: .seconds(30), every: .milliseconds(100)) {
                    ((try? await node.call("eth_getTransactionReceipt", #"["\#(hash)"]"#)) as? [String: Any]) != nil
                }
                #expect(mined)
                let transaction = try #require(
                    try await node.call("eth_getTransactionByHash", #"["\#(hash)"]"#) as? [String: Any])
                #expect(transaction["type"] as? String == "0x0")
                #expect(transaction["gasPrice"] as? String == "0x77359400")
                #expect((transaction["from"] as? String)?.lowercased() == from)
            }
        }
    }

    /// A backend that signs whole transactions (as Vault's ethsign plugin does) behind the gateway: sends are mined in
    /// nonce order, and a backend that alters what it signs gets nothing sent and burns no nonce.
    @Test func wholeTransactionBackendsSendAndAreHeldToTheRequest() async throws {
        let keys = (0..<2).map { _ in PrivateKey.random() }
        let node = try await Devnode.start(fund: keys.map(\.address.lowercaseHex))
        defer { node.stop() }
        let backend = InMemoryBackend(keys: keys, latency: .milliseconds(5), signingForm: .transaction)
        try await withLiveGateway(node: node, backends: [backend]) { gateway in
            let sends = try await ClientScenario.run(
                "send_many.py",
                [
                    "--url", gateway.url, "--from", keys.map(\.address.checksummed).joined(separator: ","),
                    "--connections", "4", "--total", "200", "--timeout", "120",
                ], timeout: .seconds(180))
            #expect(sends.exitCode == 0, "\(sends.diagnostics)")
            #expect(sends.result?["mined"] as? Int == 200)
            let perAddress = sends.result?["per_address"] as? [String: [String: Any]] ?? [:]
            #expect(perAddress.values.allSatisfy { $0["contiguous"] as? Bool == true })
        }

        // A backend that raises the value it was asked to sign.
        let greedy = InMemoryBackend(name: "greedy", keys: [keys[0]], signingForm: .transaction) { requested in
            var changed = requested
            changed.value = changed.value + 1_000_000
            return changed
        }
        try await withLiveGateway(node: node, backends: [greedy]) { gateway in
            let before = try await node.call(
                "eth_getTransactionCount", #"["\#(keys[0].address.lowercaseHex)","pending"]"#) as? String
            let answer = try await SendLiveTests.rpc(
                gateway.httpURL, "eth_sendTransaction",
                #"[{"from":"\#(keys[0].address.checksummed)","to":"\#(keys[1].address.checksummed)","value":"0x1"}]"#)
            let error = answer["error"] as? [String: Any]
            #expect(error?["code"] as? Int == -32603)
            #expect((error?["message"] as? String)?.contains("other fields than requested") == true, "\(answer)")
            let after = try await node.call(
                "eth_getTransactionCount", #"["\#(keys[0].address.lowercaseHex)","pending"]"#) as? String
            #expect(before == after, "nothing reached the node")
        }
    }
}
