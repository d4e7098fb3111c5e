import Ethereum
import Foundation
import Signers
import Submission
import TestSupport
import Testing

/// The hardened send pipeline against the real EVM, through the `signer-gateway` process: callers, node restarts
/// that lose the pool, stuck transactions and a node that stops answering.
@Suite(.serialized, .tags(.live)) struct PipelineLiveTests {
    struct Setup {
        let directory: String
        let key: PrivateKey
        var keystore: String { directory + "/keystore" }
        var journal: String { directory + "/journal.sqlite" }
        var from: String { key.address.lowercaseHex }
        /// A 1-wei transfer to itself, everything else left for the gateway to fill.
        var transfer: String { #"{"from":"\#(from)","to":"\#(from)","value":"0x1"}"# }

        init() throws {
            directory =
                FileManager.default.temporaryDirectory.appendingPathComponent("pipeline-\(UUID().uuidString)").path
            key = PrivateKey.random()
            _ = try KeystoreBackend.write(
                key, password: Array("restart".utf8), kdf: .light, to: directory + "/keystore")
        }

        func gateway(port: Int, node: Devnode, _ environment: [String: String] = [:]) throws -> ManagedProcess {
            try RestartLiveTests.startGateway(
                port: port, node: node, keystore: keystore, journal: journal,
                environment: environment)
        }
    }

    /// Runs `body` with a fresh keystore and journal, a dev node funding its account, and a free port for the
    /// gateway; the node is stopped and the files removed afterwards.
    static func withSetup(
        blockTimeMilliseconds: Int = 0, _ body: (Setup, Devnode, Int) async throws -> Void
    ) async throws {
        let setup = try Setup()
        defer { try? FileManager.default.removeItem(atPath: setup.directory) }
        let node = try await Devnode.start(blockTimeMilliseconds: blockTimeMilliseconds, fund: [setup.from])
        defer { node.stop() }
        try await body(setup, node, try RestartLiveTests.freePort())
    }

    static func send(_ port: Int, _ transaction: String) async throws -> [String: Any] {
        for _ in 0..<100 {
            if let object = try? await SendLiveTests.rpc(
                "http://127.0.0.1:\(port)/", "eth_sendTransaction", "[\(transaction)]")
            {
                return object
            }
            try await Task.sleep(for: .milliseconds(100))  // the gateway is still starting
        }
        throw TestSupportError("the gateway never answered on port \(port)")
    }

    /// The hashes the node has not mined (with status 1) within `timeout`.
    static func waitMined(_ hashes: [String], node: Devnode, timeout: Duration = .seconds(60)) async throws -> [String]
    {
        var missing = hashes
        _ = try await eventually(timeout: timeout, every: .milliseconds(200)) {
            var still: [String] = []
            for hash in missing {
                let receipt = try await node.call("eth_getTransactionReceipt", #"["\#(hash)"]"#) as? [String: Any]
                if receipt?["status"] as? String != "0x1" { still.append(hash) }
            }
            missing = still
            return missing.isEmpty
        }
        return missing
    }

    @Test func aFarFutureCallerNonceIsRefusedAndTheAddressKeepsSendingAcrossARestart() async throws {
        // queues future nonces, as geth does
        try await Self.withSetup { setup, node, port in
            var gateway = try setup.gateway(port: port, node: node)
            let refused = try await Self.send(
                port,
                #"{"from":"\#(setup.from)","to":"\#(setup.from)","value":"0x1","nonce":"0xf4240"}"#)
            let error = refused["error"] as? [String: Any]
            #expect(error?["code"] as? Int == -32000, "\(refused)")
            #expect((error?["message"] as? String)?.contains("the next nonce is 0") == true, "\(refused)")
            kill(gateway.pid, SIGTERM)
            _ = try await gateway.waitForExit(timeout: .seconds(20))
            gateway = try setup.gateway(port: port, node: node)  // same journal
            defer { gateway.stop() }
            let sent = try await Self.send(port, setup.transfer)
            let hash = try #require(sent["result"] as? String, "\(sent)")
            #expect(
                try await Self.waitMined([hash], node: node).isEmpty, "the address is stopped: \(gateway.diagnostics)")
        }
    }

    @Test func aNodeThatLosesItsPoolStillMinesEveryHashAClientGot() async throws {
        try await Self.withSetup(blockTimeMilliseconds: 1_000) { setup, node, port in
            let gateway = try setup.gateway(
                port: port, node: node, ["SIGNER_GATEWAY_SEND_REBROADCAST_EVERY_BLOCKS": "1"])
            defer { gateway.stop() }
            // Held in the pool (the miner wants more tip than they pay), so that the pool has them when it is lost.
            _ = try await node.call("devnode_setMinerTip", #"["0x174876e800"]"#)
            var hashes: [String] = []
            for _ in 0..<8 {
                let sent = try await Self.send(port, setup.transfer)
                hashes.append(try #require(sent["result"] as? String, "\(sent)"))
            }
            // The node forgets every pending transaction (a restart without its pool, an eviction).
            let dropped = try await node.call("devnode_dropPending") as? Int
            #expect(dropped == 8, "the pool must have held all eight: the test would prove nothing otherwise")
            _ = try await node.call("devnode_setMinerTip", #"["0x0"]"#)
            let missing = try await Self.waitMined(hashes, node: node)
            #expect(missing.isEmpty, "hashes a client got but the node never mined: \(missing) \(gateway.diagnostics)")
        }
    }

    @Test func aStuckTransactionIsReplacedWithHigherFeesAndMined() async throws {
        try await Self.withSetup(blockTimeMilliseconds: 300) { setup, node, port in
            // The miner wants 3 gwei of tip; the gateway offers the node's suggestion (1 gwei): accepted, never mined.
            _ = try await node.call("devnode_setMinerTip", #"["0xb2d05e00"]"#)
            let gateway = try setup.gateway(
                port: port, node: node,
                [
                    "SIGNER_GATEWAY_SEND_REPLACE_AFTER_BLOCKS": "3",
                    "SIGNER_GATEWAY_SEND_REPLACEMENT_BUMP_PERCENT": "300",
                ])
            defer { gateway.stop() }
            let sent = try await Self.send(port, setup.transfer)
            let original = try #require(sent["result"] as? String, "\(sent)")
            // The nonce is mined — by the replacement, not the original.
            var mined = "0x0"
            _ = try await eventually(timeout: .seconds(40), every: .milliseconds(200)) {
                let count = try await node.call("eth_getTransactionCount", #"["\#(setup.from)","latest"]"#)
                mined = count as? String ?? "0x0"
                return mined != "0x0"
            }
            #expect(mined == "0x1", "the stuck transaction was never replaced: \(gateway.diagnostics)")
            let originalReceipt = try await node.call("eth_getTransactionReceipt", #"["\#(original)"]"#)
            #expect(
                originalReceipt as? [String: Any] == nil,
                "the underpriced original was mined: \(originalReceipt ?? "-")")
        }
    }

    @Test func aNodeThatStopsAnsweringIsNoticedByPingAndTheLinkRecovers() async throws {
        try await Self.withSetup { setup, node, port in
            let gateway = try setup.gateway(
                port: port, node: node,
                [
                    "SIGNER_GATEWAY_NODE_PING_INTERVAL_SECONDS": "1", "SIGNER_GATEWAY_LOGGING_LEVEL": "info",
                ])
            defer { gateway.stop() }
            _ = try await Self.send(port, setup.transfer)
            kill(node.pid, SIGSTOP)  // half-open: the TCP connection stays up, nothing answers
            _ = try? await gateway.waitForLine(timeout: .seconds(15)) { $0.contains("did not answer a ping") }
            kill(node.pid, SIGCONT)
            #expect(
                (gateway.stdoutLines + gateway.stderrLines).contains { $0.contains("did not answer a ping") },
                "\(gateway.diagnostics)")
            // Once reconnected, sends go through again (until then they are refused with -32603: nothing was sent).
            var sent: [String: Any] = [:]
            _ = try await eventually(timeout: .seconds(30), every: .milliseconds(200)) {
                sent = try await Self.send(port, setup.transfer)
                return sent["result"] is String
            }
            let hash = try #require(sent["result"] as? String, "\(sent)")
            #expect(try await Self.waitMined([hash], node: node).isEmpty)
        }
    }

    @Test func killingTheGatewayDuringRecoveryLosesNothingAndLeavesNoGap() async throws {
        try await Self.withSetup(blockTimeMilliseconds: 3_000) { setup, node, port in
            // A: six transactions accepted, still in the pool; then a crash.
            let first = try setup.gateway(port: port, node: node)
            var hashes: [String] = []
            for _ in 0..<6 {
                let sent = try await Self.send(port, setup.transfer)
                hashes.append(try #require(sent["result"] as? String, "\(sent)"))
            }
            kill(first.pid, SIGKILL)
            _ = try? await first.waitForExit(timeout: .seconds(10))
            // The node loses its pool: only the journal still knows these transactions.
            _ = try await node.call("devnode_dropPending")
            // B starts recovering them and is killed the moment it reaches the node.
            let second = try setup.gateway(port: port, node: node, ["SIGNER_GATEWAY_LOGGING_LEVEL": "info"])
            _ = try? await second.waitForLine(timeout: .seconds(20)) { $0.contains("connected to node") }
            kill(second.pid, SIGKILL)
            _ = try? await second.waitForExit(timeout: .seconds(10))
            // C finishes the recovery; every hash a client got is mined, and the next send takes the next nonce.
            let third = try setup.gateway(port: port, node: node)
            defer { third.stop() }
            let next = try await Self.send(port, setup.transfer)
            let nextHash = try #require(next["result"] as? String, "\(next)")
            let missing = try await Self.waitMined(hashes + [nextHash], node: node)
            #expect(missing.isEmpty, "not mined: \(missing) \(third.diagnostics)")
            let transaction = try await node.call("eth_getTransactionByHash", #"["\#(nextHash)"]"#) as? [String: Any]
            #expect(transaction?["nonce"] as? String == "0x6")
            let pool = try await node.call("txpool_status") as? [String: Any]
            #expect(pool?["queued"] as? String == "0x0", "a gap left transactions queued: \(pool ?? [:])")
        }
    }
}
