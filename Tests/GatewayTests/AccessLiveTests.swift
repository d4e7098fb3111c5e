import Ethereum
import Foundation
import Gateway
import TestSupport
import NIOCore
import NIOPosix
import Synchronization
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Access control at the edge of a running gateway: HTTP and the WebSocket upgrade refuse callers without a valid
/// token; a user token sees and signs for its own addresses only, and a refusal burns no nonce.
@Suite(.serialized, .tags(.live)) struct AccessLiveTests {
    struct Answer {
        let status: Int
        let body: [String: Any]
        var errorCode: Int? { (body["error"] as? [String: Any])?["code"] as? Int }
    }

    static func post(_ url: String, token: String?, _ method: String, _ params: String) async throws -> Answer {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        request.httpBody = Data(#"{"jsonrpc":"2.0","id":1,"method":"\#(method)","params":\#(params)}"#.utf8)
        let (data, response) = try await URLSession.shared.data(for: request)
        let body = try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
        return Answer(status: (response as? HTTPURLResponse)?.statusCode ?? 0, body: body)
    }

    /// `eth_sendTransaction` of `value` wei from `from` to itself, as `token`'s caller.
    static func transfer(_ url: String, token: String?, from: PrivateKey, value: String) async throws -> Answer {
        let address = from.address.lowercaseHex
        return try await post(
            url, token: token, "eth_sendTransaction",
            #"[{"from":"\#(address)","to":"\#(address)","value":"\#(value)"}]"#)
    }

    /// The status line the gateway answers a WebSocket upgrade of `path` with, read off a raw TCP connection.
    static func upgradeStatus(port: Int, path: String) async throws -> String {
        let line = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: String.self)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(FirstLineHandler(line: line))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        let request =
            "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        try await channel.writeAndFlush(ByteBuffer(string: request))
        defer { channel.close(promise: nil) }
        return try await line.futureResult.get()
    }

    @Test func onlyTokensGetInAndAUserTokenSignsOnlyForItsAddresses() async throws {
        let mine = PrivateKey.random()
        let other = PrivateKey.random()
        let node = try await Devnode.start(fund: [mine.address.lowercaseHex, other.address.lowercaseHex])
        defer { node.stop() }
        let (userToken, userDigest) = AccessToken.generate()
        let (adminToken, adminDigest) = AccessToken.generate()
        let auditPath = FileManager.default.temporaryDirectory.appendingPathComponent("audit-\(UUID()).jsonl").path
        defer { try? FileManager.default.removeItem(atPath: auditPath) }
        let gateway = try await LiveGateway.start(
            node: node, backends: [InMemoryBackend(keys: [mine, other])]
        ) { configuration in
            configuration.access.anonymousRole = nil
            var user = AccessGrant(name: "dapp", role: .user, digest: userDigest)
            user.addresses = [mine.address]
            configuration.access.tokens = [user, AccessGrant(name: "ops", role: .admin, digest: adminDigest)]
            var limits = SigningPolicy(name: "dapp-limits")
            limits.tokens = ["dapp"]
            limits.maximumValuePerTransaction = UInt256(10)
            configuration.access.policies = [limits]
            configuration.auditPath = auditPath
        }
        let url = gateway.httpURL

        let anonymous = try await Self.post(url, token: nil, "eth_chainId", "[]")
        #expect(anonymous.status == 401 && anonymous.errorCode == 4100, "\(anonymous.body)")
        let wrong = try await Self.post(url, token: "sgw_wrong", "eth_chainId", "[]")
        #expect(wrong.status == 401 && wrong.errorCode == 4100)
        #expect(try await Self.upgradeStatus(port: gateway.port, path: "/").contains("401"))
        let escaped = userToken.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? userToken
        let upgraded = try await Self.upgradeStatus(port: gateway.port, path: "/?token=\(escaped)")
        #expect(upgraded.contains("101"), "\(upgraded)")

        let accounts = try await Self.post(url, token: userToken, "eth_accounts", "[]")
        #expect((accounts.body["result"] as? [String])?.map { $0.lowercased() } == [mine.address.lowercaseHex])
        let allAccounts = try await Self.post(url, token: adminToken, "eth_accounts", "[]")
        #expect((allAccounts.body["result"] as? [String])?.count == 2)

        let foreign = try await Self.transfer(url, token: userToken, from: other, value: "0x1")
        #expect(foreign.errorCode == 4100, "\(foreign.body)")
        let admin = try await Self.post(url, token: userToken, "signer_lanes", "[]")
        #expect(admin.errorCode == 4100)
        let tooMuch = try await Self.transfer(url, token: userToken, from: mine, value: "0x64")
        #expect(tooMuch.errorCode == 4001, "\(tooMuch.body)")
        let own = try await Self.transfer(url, token: userToken, from: mine, value: "0x1")
        let ownHash = try #require(own.body["result"] as? String, "\(own.body)")
        let ownSent = try await Self.post(url, token: adminToken, "eth_getTransactionByHash", #"["\#(ownHash)"]"#)
        #expect((ownSent.body["result"] as? [String: Any])?["nonce"] as? String == "0x0", "the denial took a nonce")
        // The refused send left nothing behind: the other address's next nonce is still 0, its first send uses it.
        let byAdmin = try await Self.transfer(url, token: adminToken, from: other, value: "0x1")
        let hash = try #require(byAdmin.body["result"] as? String, "\(byAdmin.body)")
        let sent = try await Self.post(url, token: adminToken, "eth_getTransactionByHash", #"["\#(hash)"]"#)
        #expect((sent.body["result"] as? [String: Any])?["nonce"] as? String == "0x0", "\(sent.body)")

        // The operator's methods, for the admin token.
        let backends = try await Self.post(url, token: adminToken, "signer_backends", "[]")
        let backend = try #require((backends.body["result"] as? [[String: Any]])?.first, "\(backends.body)")
        #expect((backend["accounts"] as? [String])?.count == 2 && backend["healthy"] as? Bool == true)
        let refreshed = try await Self.post(url, token: adminToken, "signer_refreshAccounts", "[]")
        #expect(((refreshed.body["result"] as? [String: Any])?["accounts"] as? [String])?.count == 2)
        let lanes = try await Self.post(url, token: adminToken, "signer_lanes", "[]")
        #expect(lanes.body["result"] is [String: Any], "\(lanes.body)")
        let pending = try await Self.post(url, token: adminToken, "signer_pendingTransactions", "[]")
        #expect(pending.body["result"] is [String: Any], "\(pending.body)")
        await gateway.stop()

        // Every signing decision is in the audit log, with its caller and outcome; no token is, nor in the logs.
        let audit = try String(contentsOfFile: auditPath, encoding: .utf8)
        let lines = try audit.split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        func line(_ method: String, _ decision: String, code: Int? = nil) -> [String: Any]? {
            lines.first { $0["method"] as? String == method && $0["decision"] as? String == decision
                && (code == nil || $0["code"] as? Int == code) }
        }
        #expect(line("eth_sendTransaction", "denied", code: 4100)?["caller"] as? String == "dapp", "\(audit)")
        #expect((line("eth_sendTransaction", "denied", code: 4001)?["reason"] as? String)?.contains(
            "dapp-limits (maxValuePerTransaction)") == true, "\(audit)")
        #expect(lines.contains { $0["hash"] as? String == ownHash && $0["caller"] as? String == "dapp" }, "\(audit)")
        #expect(line("signer_lanes", "denied")?["caller"] as? String == "dapp")
        #expect(line("signer_backends", "allowed")?["caller"] as? String == "ops")
        for secret in [userToken, adminToken, String(userToken.dropFirst(4)), String(adminToken.dropFirst(4))] {
            #expect(!audit.contains(secret), "a token is in the audit log")
            #expect(!gateway.logs.lines.contains { $0.contains(secret) }, "a token is in the logs")
        }
    }

    /// /health, /ready, /status and /metrics as monitoring reads them (metrics parsed by prometheus_client); /ready
    /// fails while the node is down.
    @Test func operatorEndpointsAnswerAsMonitoringReadsThem() async throws {
        let key = PrivateKey.random()
        let node = try await Devnode.start(fund: [key.address.lowercaseHex])
        defer { node.stop() }
        let (adminToken, adminDigest) = AccessToken.generate()
        let gateway = try await LiveGateway.start(node: node, backends: [InMemoryBackend(keys: [key])]) {
            $0.access.anonymousRole = .user
            $0.access.tokens = [AccessGrant(name: "ops", role: .admin, digest: adminDigest)]
        }
        let sent = try await Self.transfer(gateway.httpURL, token: nil, from: key, value: "0x1")
        #expect(sent.body["result"] is String, "\(sent.body)")
        let outcome = try await ClientScenario.run(
            "operator_endpoints.py", ["--url", gateway.httpURL, "--admin-token", adminToken])
        #expect(outcome.exitCode == 0, "\(outcome.diagnostics)")
        #expect(outcome.result?["ready"] as? Int == 200)
        let requests = outcome.result?["requests"] as? [String: Any] ?? [:]
        #expect(requests["eth_sendTransaction|ok"] as? Double == 1, "\(requests)")
        let families = outcome.result?["families"] as? [String] ?? []
        for family in [
            "signer_gateway_connections", "signer_gateway_transactions_submitted", "signer_gateway_signature_seconds",
            "signer_gateway_node_connected",
        ] {
            #expect(families.contains(family), "\(family) in \(families)")
        }
        let status = outcome.result?["status"] as? [String: Any] ?? [:]
        #expect(status["chainId"] as? String == "0x539" && status["node"] as? String == "connected", "\(status)")

        // The node goes away: /ready says so (503) while /health stays 200.
        node.stop()
        let notReady = await eventually(timeout: .seconds(30), every: .milliseconds(100)) {
            (try? await Self.get(gateway.httpURL + "ready")) == 503
        }
        #expect(notReady, "/ready still 200 without a node")
        #expect(try await Self.get(gateway.httpURL + "health") == 200)
        await gateway.stop()
    }

    static func get(_ url: String) async throws -> Int {
        let (_, response) = try await URLSession.shared.data(from: URL(string: url)!)
        return (response as? HTTPURLResponse)?.statusCode ?? 0
    }
}

/// Completes `line` with the first line the server sends (or what arrived when the connection closed), once.
private final class FirstLineHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    private let line: EventLoopPromise<String>
    private let received = Mutex((text: "", done: false))

    init(line: EventLoopPromise<String>) { self.line = line }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        let chunk = buffer.readString(length: buffer.readableBytes) ?? ""
        let first = received.withLock { state -> String? in
            state.text += chunk
            guard !state.done, let end = state.text.range(of: "\r\n") else { return nil }
            state.done = true
            return String(state.text[..<end.lowerBound])
        }
        if let first { line.succeed(first) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        let rest = received.withLock { state -> String? in
            defer { state.done = true }
            return state.done ? nil : state.text
        }
        if let rest { line.succeed(rest) }
    }
}
