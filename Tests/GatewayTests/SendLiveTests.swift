import Ethereum
import Foundation
import Gateway
import Signers
import TestSupport
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The send pipeline end to end: web3.py clients → gateway (wallet, lanes, journal, tracker) → a real EVM.
@Suite(.serialized, .tags(.live)) struct SendLiveTests {
    static func keys(_ count: Int) -> [PrivateKey] { (0..<count).map { _ in PrivateKey.random() } }

    /// POSTs one JSON-RPC call to `url` and returns the decoded response object.
    static func rpc(_ url: String, _ method: String, _ params: String) async throws -> [String: Any] {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = Data(#"{"jsonrpc":"2.0","id":1,"method":"\#(method)","params":\#(params)}"#.utf8)
        let (data, _) = try await URLSession.shared.data(for: request)
        return try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
    }

    @Test func twoThousandSendsFromTwentyConnectionsOverFiveAddresses() async throws {
        let keys = Self.keys(5)
        let node = try await Devnode.start(fund: keys.map(\.address.lowercaseHex))
        defer { node.stop() }
        // 5 ms per signature, as a nearby HSM: signing must overlap, or 2 000 signatures alone take 10 s.
        let backend = InMemoryBackend(keys: keys, latency: .milliseconds(5))
        let gateway = try await LiveGateway.start(node: node, backends: [backend])
        let outcome = try await ClientScenario.run(
            "send_many.py",
            [
                "--url", gateway.url, "--from", keys.map(\.address.checksummed).joined(separator: ","),
                "--connections", "20", "--total", "2000", "--watch-receipts", "--timeout", "240",
            ], timeout: .seconds(300))
        await gateway.stop()
        #expect(outcome.exitCode == 0, "\(outcome.diagnostics)")
        #expect(outcome.result?["mined"] as? Int == 2000)
        let perAddress = outcome.result?["per_address"] as? [String: [String: Any]] ?? [:]
        #expect(perAddress.count == 5)
        #expect(perAddress.values.allSatisfy { $0["contiguous"] as? Bool == true && $0["first_nonce"] as? Int == 0 })
        #expect((outcome.result?["receipts_streamed"] as? [String: Any])?["per_connection_ok"] as? Bool == true)
        print(
            "send pipeline: \(outcome.result?["tx_per_second"] ?? "?") tx/s end to end (debug build, automine devnode)")
    }

    @Test func aSignatureThatFailsMidRunLeavesNoGap() async throws {
        let keys = Self.keys(2)
        let node = try await Devnode.start(fund: keys.map(\.address.lowercaseHex))
        defer { node.stop() }
        // The 60th signature request fails for good (a disabled key, say); everything else succeeds.
        let backend = InMemoryBackend(keys: keys, latency: .milliseconds(2)) { _, number in
            number == 60 ? .rejected("key disabled by policy (test fault)") : nil
        }
        let gateway = try await LiveGateway.start(node: node, backends: [backend])
        let outcome = try await ClientScenario.run(
            "send_many.py",
            [
                "--url", gateway.url, "--from", keys.map(\.address.checksummed).joined(separator: ","),
                "--connections", "8", "--total", "200", "--allow-errors", "1",
            ], timeout: .seconds(180))
        await gateway.stop()
        #expect(outcome.exitCode == 0, "\(outcome.diagnostics)")
        #expect(outcome.result?["sent"] as? Int == 199)
        let errors = outcome.result?["errors"] as? [[String: Any]] ?? []
        #expect(errors.count == 1 && errors.first?["code"] as? Int == -32603, "\(errors)")
        let perAddress = outcome.result?["per_address"] as? [String: [String: Any]] ?? [:]
        #expect(perAddress.values.allSatisfy { $0["contiguous"] as? Bool == true }, "\(perAddress)")
        // The node holds exactly the transactions that got a hash: nonces 0…n-1 with none missing.
        var total = 0
        for key in keys {
            let count =
                try await node.call("eth_getTransactionCount", #"["\#(key.address.lowercaseHex)","latest"]"#) as? String
            total += Int(count?.dropFirst(2) ?? "0", radix: 16) ?? 0
        }
        #expect(total == 199)
    }

    @Test func signaturesVerifyWithEthAccountAndStrangersAreRefused() async throws {
        let keys = Self.keys(1)
        let node = try await Devnode.start(fund: keys.map(\.address.lowercaseHex))
        defer { node.stop() }
        let gateway = try await LiveGateway.start(node: node, backends: [InMemoryBackend(keys: keys)])
        let outcome = try await ClientScenario.run(
            "verify_signatures.py",
            [
                "--url", gateway.url, "--from", keys[0].address.checksummed, "--chain-id", String(node.chainID),
            ])
        await gateway.stop()
        #expect(outcome.exitCode == 0, "\(outcome.diagnostics)")
    }

    @Test func sendErrorsAreClearAndBurnNoNonce() async throws {
        let funded = PrivateKey.random(), broke = PrivateKey.random()
        let node = try await Devnode.start(fund: [funded.address.lowercaseHex])
        defer { node.stop() }
        let gateway = try await LiveGateway.start(node: node, backends: [InMemoryBackend(keys: [funded, broke])])
        let url = gateway.httpURL
        let stranger = PrivateKey.random().address.lowercaseHex
        func send(_ from: PrivateKey, value: String = "0x1", extra: String = "") async throws -> [String: Any] {
            try await Self.rpc(
                url, "eth_sendTransaction",
                #"[{"from":"\#(from.address.lowercaseHex)","to":"\#(stranger)","value":"\#(value)"}\#(extra)]"#)
        }
        // Not in the wallet → 4100 naming the address.
        let unknown = try await Self.rpc(url, "eth_sendTransaction", #"[{"from":"\#(stranger)","to":"\#(stranger)"}]"#)
        let unknownError = unknown["error"] as? [String: Any]
        #expect(unknownError?["code"] as? Int == 4100)
        #expect((unknownError?["message"] as? String)?.lowercased().contains(stranger) == true)
        // Malformed → -32602.
        let malformed = try await Self.rpc(url, "eth_sendTransaction", #"[{"from":"0x12","to":"\#(stranger)"}]"#)
        #expect((malformed["error"] as? [String: Any])?["code"] as? Int == -32602)
        // The node's own verdict, verbatim: an unfunded account.
        let broken = try await send(broke)
        let brokenError = broken["error"] as? [String: Any]
        #expect((brokenError?["message"] as? String)?.hasPrefix("insufficient funds") == true, "\(broken)")
        // No nonce burned: after a refused send, the next one uses nonce 0 of the funded account and nonce 0 stays
        // free for the broke one.
        let first = try await send(funded)
        let hash = try #require(first["result"] as? String)
        let transaction = try await node.call("eth_getTransactionByHash", #"["\#(hash)"]"#) as? [String: Any]
        #expect(transaction?["nonce"] as? String == "0x0")
        #expect(
            try await node.call("eth_getTransactionCount", #"["\#(broke.address.lowercaseHex)","pending"]"#) as? String
                == "0x0")
        // A repeat with the same idempotency key returns the first hash and sends nothing new.
        let keyed = try await send(funded, extra: #",{"idempotencyKey":"order-42"}"#)
        let repeated = try await send(funded, extra: #",{"idempotencyKey":"order-42"}"#)
        #expect(keyed["result"] as? String != nil)
        #expect(keyed["result"] as? String == repeated["result"] as? String)
        #expect(
            try await node.call("eth_getTransactionCount", #"["\#(funded.address.lowercaseHex)","latest"]"#) as? String
                == "0x2")
        // A revert during gas estimation comes back as the node's code 3, nothing sent.
        let reverting = try await Self.rpc(
            url, "eth_sendTransaction",
            #"[{"from":"\#(funded.address.lowercaseHex)","data":"0x60006000fd"}]"#)
        #expect((reverting["error"] as? [String: Any])?["code"] as? Int == 3, "\(reverting)")
        #expect(
            try await node.call("eth_getTransactionCount", #"["\#(funded.address.lowercaseHex)","latest"]"#) as? String
                == "0x2")
        await gateway.stop()
    }
}

@Suite(.serialized, .tags(.live)) struct ReceiptStreamLiveTests {
    @Test func sendAndWatchStreamsHashReceiptAndConfirmations() async throws {
        let key = PrivateKey.random()
        let node = try await Devnode.start(blockTimeMilliseconds: 150, fund: [key.address.lowercaseHex])
        defer { node.stop() }
        let gateway = try await LiveGateway.start(node: node, backends: [InMemoryBackend(keys: [key])])
        let outcome = try await ClientScenario.run(
            "receipts_watch.py",
            [
                "--url", gateway.url, "--sender", key.address.checksummed, "--confirmations", "3",
                // Each wait is for blocks of a dev node that shares two cores with the other live suites' servers.
                "--timeout", "90",
            ], timeout: .seconds(300))
        await gateway.stop()
        #expect(outcome.exitCode == 0, "\(outcome.diagnostics)")
    }
}

/// A node that speaks only HTTP: calls are proxied one POST each, sends work, receipts are found by polling, and
/// subscriptions fail with the node's own clear error.
@Suite(.serialized, .tags(.live)) struct HTTPNodeLiveTests {
    @Test func gatewayInFrontOfAnHTTPOnlyNode() async throws {
        let key = PrivateKey.random()
        let node = try await Devnode.start(fund: [key.address.lowercaseHex])
        defer { node.stop() }
        let gateway = try await LiveGateway.start(node: node, backends: [InMemoryBackend(keys: [key])]) {
            $0.node.url = node.httpURL
        }
        let number = try await SendLiveTests.rpc(gateway.httpURL, "eth_blockNumber", "[]")
        #expect(number["result"] as? String != nil, "\(number)")
        let sent = try await SendLiveTests.rpc(
            gateway.httpURL, "eth_sendTransaction",
            #"[{"from":"\#(key.address.lowercaseHex)","to":"\#(key.address.lowercaseHex)","value":"0x1"}]"#)
        let hash = try #require(sent["result"] as? String, "\(sent)")
        let receipt = try await node.call("eth_getTransactionReceipt", #"["\#(hash)"]"#) as? [String: Any]
        #expect(receipt?["status"] as? String == "0x1")
        // The receipt tracker follows the chain by polling and sees the transaction mined.
        let tracked = try Bytes32(hex: hash)
        #expect(await eventually(timeout: .seconds(15)) { gateway.application.tracker.knownReceipt(tracked) != nil })
        await gateway.stop()
    }
}
