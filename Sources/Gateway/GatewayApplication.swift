import JSON
import Logging
import NIOCore
import NIOPosix
import Node
import ServiceLifecycle
import Signers
import Submission

/// The gateway assembled from its configuration — node link, subscription hub, wallet and send pipeline, receipt
/// tracker, method table, server — as the `Service`s a `ServiceGroup` runs.
public struct GatewayApplication: Sendable {
    public let configuration: GatewayConfiguration
    public let node: any NodeConnection
    public let hub: SubscriptionHub
    public let chainID: ChainIDCache
    public let wallet: Wallet
    public let journal: any Journal
    public let pipeline: SendPipeline
    public let tracker: ReceiptTracker
    let heads: HeadsFeed
    let work: RequestWork
    /// Backends that keep something alive while idle (a token to renew).
    let backendServices: [any Service]
    public let dispatcher: RPCDispatcher
    public let server: GatewayServer
    private let logger: Logger

    public init(
        configuration: GatewayConfiguration, logger: Logger, backends extraBackends: [any KeyBackend] = [],
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) throws {
        self.configuration = configuration
        self.logger = logger
        let access = try Self.accessControl(configuration, logger: logger)
        let node = try configuration.makeNodeConnection(group: group, logger: logger)
        let hub = SubscriptionHub(node: node, logger: logger)
        let chainID = ChainIDCache(node: node)

        let backends = extraBackends + (try KeyBackendFactory.backends(for: configuration.allBackends, logger: logger))
        var walletSettings = configuration.wallet.settings
        walletSettings.refreshInterval = .seconds(configuration.wallet.refreshSeconds)
        let wallet = Wallet(backends: backends, settings: walletSettings, logger: logger)
        let journal: any Journal =
            configuration.journalPath == ":memory:"
            ? InMemoryJournal() : try SQLiteJournal(path: configuration.journalPath)
        let filler = TransactionFiller(node: node, settings: configuration.filler) { [wallet] address in
            wallet.transactionSupport(address)
        }
        let tracker = ReceiptTracker(node: node, settings: configuration.receipts, logger: logger)
        let receipts = ReceiptSubscriptions(tracker: tracker)
        var observers = SendPipeline.Observers()
        observers.submitted = { signed, connectionID in tracker.track(signed.hash, connectionID: connectionID) }
        observers.replaced = { replaced, replacement in
            tracker.replaced(replaced, by: replacement.hash)
            receipts.replaced(replaced, by: replacement.hash)
        }
        observers.settled = { hashes in tracker.forget(hashes) }
        let pipeline = SendPipeline(
            wallet: wallet, node: node, filler: filler, journal: journal,
            settings: configuration.send, observers: observers, logger: logger)
        tracker.setEventHandler { event in
            receipts.handle(event)
            pipeline.receiptEvent(event)
        }
        let heads = HeadsFeed(hub: hub) { head in
            tracker.newHead(head)
            pipeline.newHead(head.number)
        }
        node.setEventHandler { event in
            chainID.handle(event)
            if case .connected = event {
                filler.reset()
                pipeline.nodeReconnected()
            }
            hub.handle(event)
            heads.handle(event)
        }
        let work = RequestWork()
        let signingPolicies = SigningPolicies(configuration.access.policies)
        let methods: [any LocalMethods] = [
            SubscriptionMethods(hub: hub, local: [ReceiptSubscriptions.kind: receipts]),
            chainID,
            backends.isEmpty
                ? NoWalletMethods() as any LocalMethods
                : WalletMethods(
                    wallet: wallet, pipeline: pipeline, filler: filler, node: node, receipts: receipts,
                    work: work, policies: signingPolicies),
            AdminMethods(wallet: wallet, pipeline: pipeline, journal: journal, work: work),
        ]
        let dispatcher = RPCDispatcher(
            node: node, methods: methods, limits: configuration.server.rpcLimits,
            policy: RolePolicy(grants: configuration.access.tokens, signingPolicies: signingPolicies),
            audit: try configuration.auditPath.map { path throws(ConfigurationError) in
                do {
                    return AuditTrail(log: try AuditLog(path: path), logger: logger)
                } catch {
                    throw ConfigurationError("audit.path: \(error)")
                }
            })
        self.node = node
        self.hub = hub
        self.chainID = chainID
        self.wallet = wallet
        self.journal = journal
        self.pipeline = pipeline
        self.tracker = tracker
        self.heads = heads
        self.work = work
        backendServices = backends.compactMap { $0 as? any Service }
        self.dispatcher = dispatcher
        var serverSettings = configuration.server
        serverSettings.access = access
        self.server = GatewayServer(
            settings: serverSettings, dispatcher: dispatcher,
            health: { [node, hub, wallet] in
                let counts = hub.counts
                // Ready only with a node to submit to and a wallet that has asked its backends at least once:
                // before that, eth_accounts would answer an empty list.
                let ready = node.isConnected && wallet.hasRefreshed
                return (
                    ready,
                    [
                        "status": ready ? "ok" : "degraded",
                        "node": node.isConnected ? "connected" : "disconnected",
                        "wallet": wallet.hasRefreshed ? "refreshed" : "loading",
                        "accounts": .number(wallet.addresses.count),
                        "upstreamSubscriptions": .number(counts.upstream),
                        "clientSubscriptions": .number(counts.clients),
                    ]
                )
            },
            group: group, logger: logger)
    }

    /// Node first, so the server starts with a link to forward to; the group stops them in reverse order (the
    /// server drains its connections while the pipeline still runs, and backends keep their tokens until the
    /// pipeline has finished signing).
    public var services: [any Service] {
        [node] + backendServices + [hub, wallet, tracker, heads, pipeline, work, server]
    }

    public func serviceGroup(logger: Logger) -> ServiceGroup {
        ServiceGroup(
            configuration: .init(
                services: services.map { .init(service: $0) },
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
    }

    /// The configured access: tokens, and anonymous callers only where configured, said loudly, and refused beyond
    /// loopback unless forced (a signer reachable by anyone on the network moves anyone's money).
    public static func accessControl(
        _ configuration: GatewayConfiguration, logger: Logger
    ) throws(ConfigurationError) -> AccessControl {
        let access = configuration.access
        if let role = access.anonymousRole {
            let host = configuration.server.host
            let loopback = host == "localhost" || host == "::1" || host.hasPrefix("127.")
            guard loopback || access.allowAnonymousBeyondLoopback else {
                throw ConfigurationError(
                    "access.anonymous is \(role.rawValue) while listening on \(host): anyone who reaches the port "
                        + "could sign; give callers tokens (signer-gateway token new), listen on 127.0.0.1, or set "
                        + "access.allowAnonymousBeyondLoopback: true")
            }
            logger.warning(
                "ANONYMOUS ACCESS: callers without a token have the \(role.rawValue) role (access.anonymous)",
                metadata: ["server.host": "\(host)"])
        }
        return AccessControl(grants: access.tokens, anonymousRole: access.anonymousRole)
    }
}
