import JSON
import Logging
import NIOCore
import NIOPosix
import Node
import ServiceLifecycle

/// The gateway assembled from its configuration: the node link, the subscription hub, the method table and the
/// server, as the `Service`s a `ServiceGroup` runs.
public struct GatewayApplication: Sendable {
    public let configuration: GatewayConfiguration
    public let node: WebSocketNodeClient
    public let hub: SubscriptionHub
    public let chainID: ChainIDCache
    public let dispatcher: RPCDispatcher
    public let server: GatewayServer

    public init(configuration: GatewayConfiguration, logger: Logger,
                group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) throws(ConfigurationError) {
        self.configuration = configuration
        let node = WebSocketNodeClient(configuration: try configuration.nodeClientConfiguration(), group: group, logger: logger)
        let hub = SubscriptionHub(node: node, logger: logger)
        let chainID = ChainIDCache(node: node)
        node.setEventHandler { event in
            chainID.handle(event)
            hub.handle(event)
        }
        let dispatcher = RPCDispatcher(
            node: node, methods: [SubscriptionMethods(hub: hub), chainID, NoWalletMethods()],
            limits: configuration.server.rpcLimits)
        self.node = node
        self.hub = hub
        self.chainID = chainID
        self.dispatcher = dispatcher
        self.server = GatewayServer(
            configuration: configuration.server, dispatcher: dispatcher, hub: hub,
            health: { [node, hub] in
                let counts = hub.counts
                return (node.isConnected, [
                    "status": node.isConnected ? "ok" : "degraded",
                    "node": node.isConnected ? "connected" : "disconnected",
                    "upstreamSubscriptions": .number(counts.upstream),
                    "clientSubscriptions": .number(counts.clients),
                ])
            },
            group: group, logger: logger)
    }

    /// Node first, so that the server starts with a link to forward to; the group stops them in reverse order.
    public var services: [any Service] { [node, server] }

    public func serviceGroup(logger: Logger) -> ServiceGroup {
        ServiceGroup(configuration: .init(
            services: services.map { .init(service: $0) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
    }
}
