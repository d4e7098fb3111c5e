import Logging
import NIOCore
import Node
import Signers
import Submission

/// Everything the gateway can be told, fully defaulted. Every key is listed (with its documentation and
/// environment variable) in `ConfigurationKeys`, and `Config/gateway.yaml` shows them all.
public struct GatewayConfiguration: Sendable {
    public var server = GatewayServer.Settings()
    public var node = NodeSettings()
    public var logLevel: Logger.Level = .info
    public var wallet = WalletSettings()
    /// The key backends (`backends:`), besides the keystore the `keystore.*` keys name (see `allBackends`).
    public var backends: [BackendConfiguration] = []
    /// SQLite file of the send journal; `:memory:` keeps it in memory (nothing survives a restart).
    public var journalPath = "signer-gateway-journal.sqlite"
    public var filler = TransactionFiller.Settings()
    public var send = SendPipeline.Settings()
    public var receipts = ReceiptTracker.Settings()
    public var access = AccessSettings()
    /// The audit log's file (one JSON line per signing decision); `nil`: none.
    public var auditPath: String?

    public struct WalletSettings: Sendable, Hashable {
        /// Directory of Web3 Secret Storage v3 files; unset = no keystore backend.
        public var keystoreDirectory: String?
        /// Secret reference for the keystore password: `env:NAME`, `file:/path` (a bare value only for dev keys).
        public var keystorePassword: String?
        public var refreshSeconds = 300
        /// Signing timeout and per-backend concurrency.
        public var settings = Wallet.Settings()
    }

    public struct NodeSettings: Sendable, Hashable {
        /// The node the gateway is bound to: `ws://` / `wss://` (preferred: subscriptions, one multiplexed
        /// connection) or `http://` / `https://`.
        public var url = "ws://127.0.0.1:8546"
        public var requestTimeoutSeconds = 30
        public var reconnectInitialMilliseconds = 100
        public var reconnectMaximumMilliseconds = 5_000
        /// CA bundle for a `wss://` node with a private CA.
        public var caFile: String?
        /// The WebSocket link pings the node after this much silence and reconnects when no answer follows within
        /// another interval: a half-open connection is noticed in seconds, not when TCP gives up.
        public var pingIntervalSeconds = 10
    }

    public init() {}

    /// The node link the configuration names: a WebSocket client for ws:// and wss://, an HTTP client for
    /// http:// and https:// (no subscriptions then).
    public func makeNodeConnection(group: any EventLoopGroup, logger: Logger) throws -> any NodeConnection {
        let endpoint = try nodeEndpoint()
        if endpoint.isWebSocket {
            var settings = WebSocketNodeClient.Settings(endpoint: endpoint)
            settings.requestTimeout = .seconds(node.requestTimeoutSeconds)
            settings.backoff = Backoff(
                initial: .milliseconds(node.reconnectInitialMilliseconds),
                maximum: .milliseconds(node.reconnectMaximumMilliseconds))
            settings.maximumMessageBytes = max(server.limits.maximumMessageBytes, 32 * 1024 * 1024)
            settings.trustRootsFile = node.caFile
            settings.pingInterval = .seconds(node.pingIntervalSeconds)
            return WebSocketNodeClient(settings: settings, group: group, logger: logger)
        }
        var settings = HTTPNodeClient.Settings(endpoint: endpoint)
        settings.requestTimeout = .seconds(node.requestTimeoutSeconds)
        settings.trustRootsFile = node.caFile
        return try HTTPNodeClient(settings: settings, group: group, logger: logger)
    }

    public func nodeEndpoint() throws(ConfigurationError) -> NodeEndpoint {
        guard let endpoint = NodeEndpoint(url: node.url) else {
            throw ConfigurationError("node.url: \"\(node.url)\" is not a URL like ws://host:port/ or http://host:port/")
        }
        return endpoint
    }
}

/// A configuration mistake, said so that the operator can fix it.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
