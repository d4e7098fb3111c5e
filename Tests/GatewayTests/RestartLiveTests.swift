import Ethereum
import Foundation
import Signers
import Submission
import TestSupport
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The gateway as a process, killed with SIGKILL in the middle of a send run and started again on the same journal:
/// every transaction a client got a hash for is mined, and no nonce gap or repeat reaches the node.
@Suite(.serialized, .tags(.live)) struct RestartLiveTests {
    static func freePort() throws -> Int {
        let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) }
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    static func startGateway(
        port: Int, node: Devnode, keystore: String, journal: String,
        environment: [String: String] = [:]
    ) throws -> ManagedProcess {
        let binary = Repository.path(".build/debug/signer-gateway")
        guard FileManager.default.fileExists(atPath: binary) else {
            throw TestSupportError("\(binary) is missing: build it with `swift build` (Tools/test does)")
        }
        return try ManagedProcess(
            name: "signer-gateway", executable: binary, arguments: ["serve"],
            environment: [
                "SIGNER_GATEWAY_SERVER_PORT": String(port), "SIGNER_GATEWAY_NODE_URL": node.webSocketURL,
                "SIGNER_GATEWAY_KEYSTORE_DIRECTORY": keystore,
                "SIGNER_GATEWAY_KEYSTORE_PASSWORD": "env:RESTART_TEST_PASSWORD",
                "RESTART_TEST_PASSWORD": "restart", "SIGNER_GATEWAY_JOURNAL_PATH": journal,
                "SIGNER_GATEWAY_LOGGING_LEVEL": "notice", "SIGNER_GATEWAY_ACCESS_ANONYMOUS": "user",
            ].merging(environment) { _, given in given })
    }

    @Test func sigtermStopsAcceptingDrainsAndExitsCleanly() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("term-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let key = PrivateKey.random()
        _ = try KeystoreBackend.write(key, password: Array("restart".utf8), kdf: .light, to: directory + "/keystore")
        let node = try await Devnode.start(fund: [key.address.lowercaseHex])
        defer { node.stop() }
        let port = try Self.freePort()
        let gateway = try Self.startGateway(
            port: port, node: node, keystore: directory + "/keystore",
            journal: directory + "/journal.sqlite")
        defer { gateway.stop() }
        // Serving: a signed send goes through.
        var answered = false
        for _ in 0..<100 where !answered {
            let object = try? await SendLiveTests.rpc(
                "http://127.0.0.1:\(port)/", "eth_sendTransaction",
                #"[{"from":"\#(key.address.lowercaseHex)","to":"\#(key.address.lowercaseHex)","value":"0x1"}]"#)
            answered = object?["result"] is String
            if !answered { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(answered)
        kill(gateway.pid, SIGTERM)
        #expect(try await gateway.waitForExit(timeout: .seconds(20)) == 0, "\(gateway.diagnostics)")
        // The journal is closed cleanly and says the transaction was submitted.
        let journal = try SQLiteJournal(path: directory + "/journal.sqlite")
        #expect(try await journal.lastAcceptedNonce(from: key.address) == 0)
    }

    @Test func killingTheGatewayMidRunLosesNoTransactionThatGotAHash() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("restart-\(UUID().uuidString)")
            .path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let keystore = directory + "/keystore"
        let keys = (0..<3).map { _ in PrivateKey.random() }
        for key in keys {
            _ = try KeystoreBackend.write(key, password: Array("restart".utf8), kdf: .light, to: keystore)
        }
        let node = try await Devnode.start(fund: keys.map(\.address.lowercaseHex))
        defer { node.stop() }
        let port = try Self.freePort()
        let url = "http://127.0.0.1:\(port)/"
        let run = RunState(
            gateway: try Self.startGateway(
                port: port, node: node, keystore: keystore, journal: directory + "/journal.sqlite"))
        defer { run.gateway.stop() }
        let target = 240
        let killAfter = 80
        // 12 concurrent senders over HTTP; a refused or broken request is retried (it may or may not have been
        // sent: only answered hashes count as the client's knowledge).
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<12 {
                group.addTask {
                    var attempt = 0
                    while run.count < target {
                        attempt += 1
                        let from = keys[(worker + attempt) % keys.count].address.lowercaseHex  // spread over the keys
                        var request = URLRequest(url: URL(string: url)!)
                        request.httpMethod = "POST"
                        request.timeoutInterval = 20
                        request.httpBody = Data(
                            #"{"jsonrpc":"2.0","id":1,"method":"eth_sendTransaction","params":[{"from":"\#(from)","to":"\#(from)","value":"0x1"}]}"#
                                .utf8)
                        guard let (data, _) = try? await URLSession.shared.data(for: request),
                            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                            let hash = object["result"] as? String
                        else {
                            try await Task.sleep(for: .milliseconds(100))
                            continue
                        }
                        run.append(hash)
                    }
                }
            }
            group.addTask {
                while run.count < killAfter { try await Task.sleep(for: .milliseconds(10)) }
                kill(run.gateway.pid, SIGKILL)  // a crash: no drain, no goodbye
                try await Task.sleep(for: .milliseconds(300))
                run.gateway = try Self.startGateway(
                    port: port, node: node, keystore: keystore, journal: directory + "/journal.sqlite")
            }
            try await group.waitForAll()
        }
        let answered = run.hashes
        // Every answered hash is mined by the node, with status 1.
        let missing = try await PipelineLiveTests.waitMined(answered, node: node)
        #expect(missing.isEmpty, "hashes a client got but the node never mined: \(missing.prefix(5))")
        // No gap reached the node: the devnode queues future nonces (as geth does), so a gap would leave
        // transactions queued behind it.
        let pool = try await node.call("txpool_status", "[]") as? [String: Any]
        #expect(pool?["queued"] as? String == "0x0", "transactions queued behind a gap: \(pool ?? [:])")
        print("restart: \(answered.count) hashes answered across a SIGKILL, all mined")
    }
}

/// What the senders and the killer share.
private final class RunState: @unchecked Sendable {
    private let lock = NSLock()
    private var _gateway: ManagedProcess
    private var _hashes: [String] = []

    init(gateway: ManagedProcess) { _gateway = gateway }

    var gateway: ManagedProcess {
        get { lock.withLock { _gateway } }
        set { lock.withLock { _gateway = newValue } }
    }
    var count: Int { lock.withLock { _hashes.count } }
    var hashes: [String] { lock.withLock { _hashes } }
    func append(_ hash: String) { lock.withLock { _hashes.append(hash) } }
}
