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
    public let dispatcher: RPCDispatcher
    public let server: GatewayServer
    private let logger: Logger

    public init(configuration: GatewayConfiguration, logger: Logger, backends extraBackends: [any KeyBackend] = [],
                group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) throws {
        self.configuration = configuration
        self.logger = logger
        let node = try configuration.makeNodeConnection(group: group, logger: logger)
        let hub = SubscriptionHub(node: node, logger: logger)
        let chainID = ChainIDCache(node: node)

        var backends = extraBackends
        if let directory = configuration.wallet.keystoreDirectory {
            guard let password = configuration.wallet.keystorePassword else {
                throw ConfigurationError("keystore.password: required with keystore.directory (env:NAME or file:/path)")
            }
            backends.append(KeystoreBackend(directory: directory, password: SecretReference(password), logger: logger))
        }
        let wallet = Wallet(backends: backends, refreshInterval: .seconds(configuration.wallet.refreshSeconds), logger: logger)
        let journal: any Journal =
            configuration.journalPath == ":memory:" ? InMemoryJournal() : try SQLiteJournal(path: configuration.journalPath)
        let filler = TransactionFiller(node: node, settings: configuration.filler)
        let tracker = ReceiptTracker(node: node, journal: journal, settings: configuration.receipts, logger: logger)
        let receipts = ReceiptSubscriptions(tracker: tracker)
        tracker.setEventHandler { receipts.handle($0) }
        let pipeline = SendPipeline(wallet: wallet, node: node, filler: filler, journal: journal, logger: logger) { signed, origin in
            tracker.track(signed.hash, origin: origin)
        }
        let heads = HeadsFeed(hub: hub, tracker: tracker)
        node.setEventHandler { event in
            chainID.handle(event)
            if case .connected = event { filler.reset() }
            hub.handle(event)
            heads.handle(event)
        }
        let methods: [any LocalMethods] = [
            SubscriptionMethods(hub: hub, local: [ReceiptSubscriptions.kind: receipts]),
            chainID,
            backends.isEmpty
                ? NoWalletMethods() as any LocalMethods
                : WalletMethods(wallet: wallet, pipeline: pipeline, filler: filler, node: node, receipts: receipts),
        ]
        let dispatcher = RPCDispatcher(node: node, methods: methods, limits: configuration.server.rpcLimits)
        self.node = node
        self.hub = hub
        self.chainID = chainID
        self.wallet = wallet
        self.journal = journal
        self.pipeline = pipeline
        self.tracker = tracker
        self.dispatcher = dispatcher
        self.server = GatewayServer(
            configuration: configuration.server, dispatcher: dispatcher,
            health: { [node, hub, wallet] in
                let counts = hub.counts
                return (node.isConnected, [
                    "status": node.isConnected ? "ok" : "degraded",
                    "node": node.isConnected ? "connected" : "disconnected",
                    "accounts": .number(wallet.addresses.count),
                    "upstreamSubscriptions": .number(counts.upstream),
                    "clientSubscriptions": .number(counts.clients),
                ])
            },
            group: group, logger: logger)
    }

    /// Node first, so the server starts with a link to forward to; the group stops them in reverse order.
    public var services: [any Service] {
        [node, wallet, tracker, JournalRecovery(pipeline: pipeline, node: node, logger: logger), server]
    }

    public func serviceGroup(logger: Logger) -> ServiceGroup {
        ServiceGroup(configuration: .init(
            services: services.map { .init(service: $0) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
    }
}

/// Once the node is reachable, resubmits and resumes tracking what the journal holds from before a restart.
struct JournalRecovery: Service {
    let pipeline: SendPipeline
    let node: any NodeConnection

    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            do {
                try await pipeline.prepare()  // sends wait for this: request ids continue after the journal's
            } catch {
                logger.critical("journal cannot be read; sends wait until it can", metadata: ["error": "\(error)"])
                return
            }
            while !node.isConnected {
                try? await Task.sleep(for: .milliseconds(50))
                if Task.isCancelled { return }
            }
            do { try await pipeline.recover() } catch {
                logger.error("journal recovery failed", metadata: ["error": "\(error)"])
            }
        }
        // A service that returns ends the group: stay until shutdown.
        try? await gracefulShutdown()
    }
}
