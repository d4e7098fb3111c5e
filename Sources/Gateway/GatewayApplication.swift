import JSON
import Logging
import NIOCore
import NIOPosix
import Node
import ServiceLifecycle
import Signers
import Submission
import Synchronization

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
    public let metrics: GatewayMetrics
    private let logger: Logger

    public init(
        configuration: GatewayConfiguration, logger: Logger, backends extraBackends: [any KeyBackend] = [],
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) throws {
        self.configuration = configuration
        self.logger = logger
        let access = try Self.accessControl(configuration, logger: logger)
        let metrics = GatewayMetrics()
        let node = try configuration.makeNodeConnection(group: group, logger: logger)
        let hub = SubscriptionHub(node: node, logger: logger)
        let chainID = ChainIDCache(node: node)

        let backends = extraBackends + (try KeyBackendFactory.backends(for: configuration.allBackends, logger: logger))
        var walletSettings = configuration.wallet.settings
        walletSettings.refreshInterval = .seconds(configuration.wallet.refreshSeconds)
        let wallet = Wallet(backends: backends, settings: walletSettings, logger: logger) { backend, duration, failed in
            metrics.signature(backend: backend, duration: duration, failed: failed)
        }
        let journal: any Journal =
            configuration.journalPath == ":memory:"
            ? InMemoryJournal() : try SQLiteJournal(path: configuration.journalPath)
        let filler = TransactionFiller(node: node, settings: configuration.filler) { [wallet] address in
            wallet.transactionSupport(address)
        }
        let tracker = ReceiptTracker(node: node, settings: configuration.receipts, logger: logger)
        let receipts = ReceiptSubscriptions(tracker: tracker)
        var observers = SendPipeline.Observers()
        observers.submitted = { signed, connectionID in
            metrics.transactionSubmitted()
            tracker.track(signed.hash, connectionID: connectionID)
        }
        observers.replaced = { replaced, replacement in
            metrics.transactionReplaced()
            tracker.replaced(replaced, by: replacement.hash)
            receipts.replaced(replaced, by: replacement.hash)
        }
        observers.settled = { hashes in tracker.forget(hashes) }
        let pipeline = SendPipeline(
            wallet: wallet, node: node, filler: filler, journal: journal,
            settings: configuration.send, observers: observers, logger: logger)
        tracker.setEventHandler { event in
            if case .mined = event { metrics.transactionMined() }
            receipts.handle(event)
            pipeline.receiptEvent(event)
        }
        let heads = HeadsFeed(hub: hub) { head in
            tracker.newHead(head)
            pipeline.newHead(head.number)
        }
        let connectedBefore = Mutex(false)
        node.setEventHandler { event in
            chainID.handle(event)
            if case .connected = event {
                if connectedBefore.withLock({ before in defer { before = true }; return before }) {
                    metrics.nodeReconnected()
                }
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
            observer: metrics,
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
        let status = GatewayStatus(
            configuration: configuration, node: node, chainID: chainID, wallet: wallet, hub: hub)
        let server = GatewayServer(
            settings: serverSettings, dispatcher: dispatcher,
            endpoints: OperatorEndpoints(
                health: status.health, status: status.status, metrics: metrics.exposition),
            group: group, logger: logger)
        metrics.readLevels(
            from: GatewayMetrics.Levels(
                connections: { server.connectionCount }, queueDepths: { pipeline.queueDepths },
                nodeConnected: { node.isConnected }))
        status.serving(server)
        self.server = server
        self.metrics = metrics
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
