import Foundation

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A dev node (Tools/devnode: py-evm behind geth-compatible JSON-RPC) on a free port, for one test.
public final class Devnode: Sendable {
    public let port: Int
    public let blockTimeMilliseconds: Int
    public let chainID: UInt64
    private let process: ManagedProcess

    /// Dev account 0 of every devnode: its key is public (keccak256("devnode:0")), for loopback use only.
    public static let devKey0 = "0x1e535dbc1980a91be9ecc1f49a68c700720106f5e435207bc4759e83e0c7471d"

    public static func start(
        blockTimeMilliseconds: Int = 0, port: Int = 0, chainID: UInt64 = 1337,
        fund: [String] = []
    ) async throws -> Devnode {
        let python = try await PythonTools.python(.devnode)
        var arguments = [
            Repository.path("Tools/devnode/devnode.py"), "--port", String(port), "--chain-id", String(chainID),
            "--block-time-ms", String(blockTimeMilliseconds),
        ]
        if !fund.isEmpty { arguments += ["--fund", fund.joined(separator: ",")] }
        let process = try ManagedProcess(name: "devnode", executable: python, arguments: arguments)
        let ready = try await process.waitForLine(timeout: .seconds(60)) { $0.hasPrefix("devnode listening on ") }
        // "devnode listening on http://127.0.0.1:PORT (ws://127.0.0.1:PORT)"
        let afterHost = ready.split(separator: "http://127.0.0.1:", maxSplits: 1).last ?? ""
        guard let bound = Int(afterHost.prefix { $0.isNumber }) else {
            throw TestSupportError("unexpected devnode ready line: \(ready)")
        }
        return Devnode(port: bound, blockTimeMilliseconds: blockTimeMilliseconds, chainID: chainID, process: process)
    }

    private init(port: Int, blockTimeMilliseconds: Int, chainID: UInt64, process: ManagedProcess) {
        self.port = port
        self.blockTimeMilliseconds = blockTimeMilliseconds
        self.chainID = chainID
        self.process = process
    }

    public var webSocketURL: String { "ws://127.0.0.1:\(port)/" }
    public var httpURL: String { "http://127.0.0.1:\(port)/" }

    public func stop() { process.stop() }

    /// For signalling the node (SIGSTOP makes a half-open connection).
    public var pid: Int32 { process.pid }

    /// A fresh node (new chain) on the same port, as after a node restart.
    public func restarted() async throws -> Devnode {
        await process.stopAndWait()
        return try await Devnode.start(blockTimeMilliseconds: blockTimeMilliseconds, port: port, chainID: chainID)
    }

    /// One JSON-RPC call over HTTP, for test assertions about the node's own state.
    public func call(_ method: String, _ params: String = "[]") async throws -> Any? {
        var request = URLRequest(url: URL(string: httpURL)!)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = Data(#"{"jsonrpc":"2.0","id":1,"method":"\#(method)","params":\#(params)}"#.utf8)
        let (data, _) = try await URLSession.shared.data(for: request)
        let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        if let error = object?["error"] { throw TestSupportError("devnode \(method) failed: \(error)") }
        return object?["result"]
    }

    deinit { stop() }
}
