import Foundation
import Gateway
import TestSupport
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The gateway between real third-party clients (web3.py 8, `websockets`) and a real EVM (the dev node).
@Suite(.serialized, .tags(.live)) struct GatewayLiveTests {
    @Test func web3ClientReadsSendsAndSubscribesThroughTheGateway() async throws {
        let node = try await Devnode.start(blockTimeMilliseconds: 200)
        let gateway = try await LiveGateway.start(node: node)
        defer { node.stop() }
        let outcome = try await ClientScenario.run(
            "web3_basic.py",
            [
                "--url", gateway.url, "--private-key", Devnode.devKey0, "--chain-id", String(node.chainID),
            ])
        await gateway.stop()
        #expect(outcome.exitCode == 0, "\(outcome.diagnostics)")
        #expect(outcome.result?["chain_id"] as? Int == Int(node.chainID))
    }

    @Test func fiftyConnectionsShareOneUpstreamSubscription() async throws {
        let node = try await Devnode.start(blockTimeMilliseconds: 200)
        let gateway = try await LiveGateway.start(node: node)
        defer { node.stop() }
        let clients = try await ClientScenario.start(
            "fanout.py", ["--url", gateway.url, "--connections", "50", "--heads", "3"])
        var maximumNodeSubscriptions = 0
        var maximumClientSubscriptions = 0
        while clients.isRunning {
            let counts = try await node.call("devnode_subscriptions") as? [String: Int] ?? [:]
            maximumNodeSubscriptions = max(maximumNodeSubscriptions, counts["newHeads"] ?? 0)
            maximumClientSubscriptions = max(maximumClientSubscriptions, gateway.application.hub.counts.clients)
            try await Task.sleep(for: .milliseconds(30))
        }
        let exitCode = try await clients.waitForExit()
        #expect(exitCode == 0, "\(clients.diagnostics)")
        // 50 clients, plus the gateway's own receipt tracker, which follows new heads through the same subscription.
        #expect(maximumClientSubscriptions == 51)
        #expect(maximumNodeSubscriptions == 1, "the node must see one newHeads subscription for all 50 clients")
        // When the clients leave, the one upstream subscription stays for the tracker alone.
        var remaining = -1
        _ = try await eventually {
            remaining = (try await node.call("devnode_subscriptions") as? [String: Int])?["newHeads"] ?? 0
            return remaining == 1 && gateway.application.hub.counts.clients == 1
        }
        #expect(remaining == 1)
        #expect(gateway.application.hub.counts.clients == 1)
        await gateway.stop()
    }

    @Test func malformedInputGetsGethErrorsAndDisturbsNoOtherConnection() async throws {
        let node = try await Devnode.start(blockTimeMilliseconds: 200)
        let gateway = try await LiveGateway.start(node: node) { $0.server.limits.maximumMessageBytes = 1 << 20 }
        defer { node.stop() }
        let outcome = try await ClientScenario.run(
            "malformed.py", ["--url", gateway.url, "--max-frame-bytes", String(1 << 20)])
        await gateway.stop()
        #expect(outcome.exitCode == 0, "\(outcome.diagnostics)")
        let checks = outcome.result?["checks"] as? [String: String] ?? [:]
        #expect(checks.count >= 15)
        #expect(checks.values.allSatisfy { $0 == "pass" }, "\(checks)")
    }

    @Test func subscriptionsSurviveANodeRestartUnderTheirIDs() async throws {
        var node = try await Devnode.start(blockTimeMilliseconds: 150)
        let gateway = try await LiveGateway.start(node: node)
        let watcher = try await ClientScenario.start(
            "watch_heads.py", ["--url", gateway.url, "--subscriptions", "2", "--max-seconds", "60"])
        func heads() -> [(id: String, number: Int)] {
            watcher.stdoutLines.compactMap { line in
                guard line.hasPrefix("HEAD "),
                    let object = try? JSONSerialization.jsonObject(with: Data(line.dropFirst(5).utf8))
                        as? [String: Any],
                    let id = object["subscription"] as? String, let number = object["number"] as? String,
                    let value = Int(number.dropFirst(2), radix: 16)
                else { return nil }
                return (id, value)
            }
        }
        func waitForHeads(_ count: Int) async throws {
            let arrived = await eventually(timeout: .seconds(30), every: .milliseconds(20)) {
                heads().count >= count || !watcher.isRunning
            }
            guard arrived, heads().count >= count else {
                throw TestSupportError("expected \(count) heads, got \(heads().count)\n\(watcher.diagnostics)")
            }
        }
        try await waitForHeads(6)
        let idsBefore = Set(heads().map(\.id))
        #expect(idsBefore.count == 2)

        node = try await node.restarted()  // same port, fresh chain: block numbers start again
        let seenBeforeRestart = heads().count
        try await waitForHeads(seenBeforeRestart + 8)
        let after = heads().dropFirst(seenBeforeRestart)
        #expect(Set(after.map(\.id)) == idsBefore, "clients keep their subscription ids across the node restart")
        #expect(watcher.isRunning, "the client connection stays open while the node restarts")
        let counts = try await node.call("devnode_subscriptions") as? [String: Int] ?? [:]
        #expect(counts["newHeads"] == 1, "one upstream subscription re-established for both client subscriptions")
        watcher.stop()
        await gateway.stop()
        node.stop()
    }

    @Test func aClientThatStopsReadingIsDisconnectedAndOthersCarryOn() async throws {
        let node = try await Devnode.start(blockTimeMilliseconds: 200)
        let gateway = try await LiveGateway.start(node: node) { $0.server.limits.maximumOutboundBytes = 1 << 20 }
        defer { node.stop() }
        let watcher = try await ClientScenario.start(
            "watch_heads.py", ["--url", gateway.url, "--subscriptions", "1", "--max-seconds", "60"])
        _ = try await watcher.waitForLine { $0.hasPrefix("HEAD ") }
        let slow = try await ClientScenario.start(
            "slow_reader.py", ["--url", gateway.url, "--batches", "400", "--hold-seconds", "8"])
        _ = try await slow.waitForLine(timeout: .seconds(60)) { $0.hasPrefix("SENT ") }
        // The slow client still holds its socket; the server must have dropped it.
        _ = await eventually(timeout: .seconds(15)) { gateway.application.server.connectionCount <= 1 }
        #expect(gateway.application.server.connectionCount == 1, "only the well-behaved watcher remains")
        let headsBefore = watcher.stdoutLines.filter { $0.hasPrefix("HEAD ") }.count
        try await Task.sleep(for: .milliseconds(800))
        #expect(
            watcher.stdoutLines.filter { $0.hasPrefix("HEAD ") }.count > headsBefore, "the other client keeps receiving"
        )
        #expect(gateway.logs.lines.contains { $0.contains("not reading") })
        slow.stop()
        watcher.stop()
        await gateway.stop()
    }

    @Test func httpTransport() async throws {
        let node = try await Devnode.start()
        let gateway = try await LiveGateway.start(node: node) { $0.server.limits.maximumHTTPBodyBytes = 4096 }
        defer { node.stop() }
        func post(_ body: String) async throws -> (Int, String) {
            var request = URLRequest(url: URL(string: gateway.httpURL)!)
            request.httpMethod = "POST"
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = Data(body.utf8)
            let (data, response) = try await URLSession.shared.data(for: request)
            return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
        }
        let (status, chainID) = try await post(#"{"jsonrpc":"2.0","id":7,"method":"eth_chainId"}"#)
        #expect(status == 200)
        #expect(chainID == #"{"jsonrpc":"2.0","id":7,"result":"0x539"}"#)
        let (_, batch) = try await post(
            #"[{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"},{"jsonrpc":"2.0","id":2,"method":"eth_subscribe","params":["newHeads"]},{"jsonrpc":"2.0","id":3,"method":"debug_traceTransaction","params":[]}]"#
        )
        let items = try JSONSerialization.jsonObject(with: Data(batch.utf8)) as? [[String: Any]] ?? []
        #expect(items.map { $0["id"] as? Int } == [1, 2, 3])
        #expect((items[1]["error"] as? [String: Any])?["message"] as? String == "notifications not supported")
        #expect((items[2]["error"] as? [String: Any])?["code"] as? Int == -32601)
        let (tooLarge, _) = try await post(String(repeating: " ", count: 5000) + "{}")
        #expect(tooLarge == 413)
        // A browser page from another origin may not use the gateway's keys.
        var foreign = URLRequest(url: URL(string: gateway.httpURL)!)
        foreign.httpMethod = "POST"
        foreign.setValue("https://evil.example", forHTTPHeaderField: "Origin")
        foreign.httpBody = Data(#"{"jsonrpc":"2.0","id":1,"method":"eth_accounts"}"#.utf8)
        let (_, refused) = try await URLSession.shared.data(for: foreign)
        #expect((refused as? HTTPURLResponse)?.statusCode == 403)
        let (health, _) = try await URLSession.shared.data(from: URL(string: gateway.httpURL + "health")!)
        #expect(String(decoding: health, as: UTF8.self).contains(#""node":"connected""#))
        await gateway.stop()
    }
}

/// wss:// and https:// with a certificate from a private CA (made with the openssl CLI for the test).
@Suite(.serialized, .tags(.live)) struct TLSLiveTests {
    @Test func websocketAndHTTPOverTLS() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tls-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let script = """
            set -e
            cd '\(directory)'
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca 2>/dev/null
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1 2>/dev/null
            printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile san.ext 2>/dev/null
            """
        let openssl = try ManagedProcess(name: "openssl", executable: "/bin/sh", arguments: ["-c", script])
        #expect(try await openssl.waitForExit() == 0, "\(openssl.diagnostics)")

        let node = try await Devnode.start()
        defer { node.stop() }
        let gateway = try await LiveGateway.start(node: node) { configuration in
            configuration.server.tls = .init(
                certificateChain: directory + "/server.pem", privateKey: directory + "/server.key")
        }
        let outcome = try await ClientScenario.run(
            "tls_check.py",
            [
                "--url", "wss://127.0.0.1:\(gateway.port)/", "--ca-file", directory + "/ca.pem",
            ])
        await gateway.stop()
        #expect(outcome.exitCode == 0, "\(outcome.diagnostics)")
        #expect((outcome.result?["tls_version"] as? String)?.hasPrefix("TLSv1.") == true)
    }
}
