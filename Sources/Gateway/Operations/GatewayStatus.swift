import JSON
import NIOCore
import Node
import Signers
import NIOConcurrencyHelpers

/// What `/status`, `/health` and `/ready` say: this gateway's version, chain, node link and URLs for anyone; its
/// backends and their accounts (addresses only) for an admin.
struct GatewayStatus: Sendable {
    static let version = "0.5.0"

    let configuration: GatewayConfiguration
    let node: any NodeConnection
    let chainID: ChainIDCache
    let wallet: Wallet
    let hub: SubscriptionHub
    /// The server, once made (it is given these endpoints when it is made).
    private let server = NIOLockedValueBox<GatewayServer?>(nil)

    func serving(_ server: GatewayServer) { self.server.withLockedValue { $0 = server } }

    /// Ready: a node to submit to, a wallet that has asked its backends at least once (before that, eth_accounts
    /// would answer an empty list), and every backend answering its last listing.
    @Sendable func health() -> (ready: Bool, detail: JSONValue) {
        let counts = hub.counts
        let unreachable = wallet.backendSummaries.filter { $0.lastError != nil }.map(\.name)
        let ready = node.isConnected && wallet.hasRefreshed && unreachable.isEmpty
        return (
            ready,
            [
                "status": ready ? "ok" : "degraded",
                "node": node.isConnected ? "connected" : "disconnected",
                "wallet": wallet.hasRefreshed ? "refreshed" : "loading",
                "accounts": .number(wallet.addresses.count),
                "unreachableBackends": .array(unreachable.map { .string($0) }),
                "upstreamSubscriptions": .number(counts.upstream),
                "clientSubscriptions": .number(counts.clients),
            ]
        )
    }

    @Sendable func status(admin: Bool) -> JSONValue {
        let tls = configuration.server.tls != nil
        let host = configuration.server.host == "0.0.0.0" ? "127.0.0.1" : configuration.server.host
        let port = server.withLockedValue { $0?.boundPort } ?? configuration.server.port
        var object = JSONObject([
            ("version", .string(Self.version)),
            ("chainId", chainID.value ?? .null),
            ("node", .string(node.isConnected ? "connected" : "disconnected")),
            ("rpcUrl", .string("\(tls ? "https" : "http")://\(host):\(port)/")),
            ("wssUrl", .string("\(tls ? "wss" : "ws")://\(host):\(port)/")),
            ("accounts", .number(wallet.addresses.count)),
        ])
        if admin {
            object["backends"] = .array(wallet.backendSummaries.map(AdminMethods.json))
        }
        return .object(object)
    }
}
