import JSON
import JSONRPC
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket
import ServiceLifecycle

/// The client-facing server: HTTP/1.1 and WebSocket JSON-RPC on one port, optionally behind TLS. A `Service`:
/// on graceful shutdown it stops accepting, lets connections finish what they have in flight, then closes them.
public final class GatewayServer: Service {
    public struct Settings: Sendable {
        public var host = "127.0.0.1"
        /// 0 picks a free port (see `listeningAddress`).
        public var port = 8545
        public var tls: TLSFiles?
        public var limits = ServerLimits()
        public var rpcLimits = RPCLimits()
        /// How long graceful shutdown waits for in-flight requests before closing connections.
        public var drainSeconds = 10
        /// Who may connect (tokens, the anonymous role); `nil`: no access control (a server assembled by a test).
        public var access: AccessControl?
        /// Browser origins allowed to call the gateway. A request carrying an `Origin` header (every browser page
        /// does) is refused unless its origin is listed; `*` allows any. Non-browser clients send no Origin.
        /// Without this, any web page open on the gateway's host could sign with its keys.
        public var allowedOrigins: [String] = []

        /// The caller a request head identifies (always the unrestricted caller without access control).
        func identity(for head: HTTPRequestHead) -> Result<Identity, AccessControl.Refusal> {
            guard let access else { return .success(.anonymous) }
            return access.authenticate(authorization: head.headers.first(name: "authorization"), uri: head.uri)
        }

        func allows(origin: String?) -> Bool {
            guard let origin else { return true }
            return allowedOrigins.contains("*") || allowedOrigins.contains(origin)
        }

        public init() {}
    }

    public struct TLSFiles: Sendable, Hashable {
        public var certificateChain: String
        public var privateKey: String

        public init(certificateChain: String, privateKey: String) {
            (self.certificateChain, self.privateKey) = (certificateChain, privateKey)
        }
    }

    private let settings: Settings
    private let dispatcher: RPCDispatcher
    private let endpoints: OperatorEndpoints
    private let group: any EventLoopGroup
    private let logger: Logger
    private let listening: EventLoopPromise<SocketAddress>
    private let connections = NIOLockedValueBox([ObjectIdentifier: any Channel]())

    public init(
        settings: Settings, dispatcher: RPCDispatcher,
        endpoints: OperatorEndpoints,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger
    ) {
        self.settings = settings
        self.dispatcher = dispatcher
        self.endpoints = endpoints
        self.group = group
        self.logger = logger
        self.listening = group.next().makePromise(of: SocketAddress.self)
    }

    /// The bound address, once listening (useful with port 0).
    public var listeningAddress: SocketAddress {
        get async throws { try await listening.futureResult.get() }
    }

    public var connectionCount: Int { connections.withLockedValue { $0.count } }

    /// The port once listening (`nil` before).
    public var boundPort: Int? { bound.withLockedValue { $0 } }
    private let bound = NIOLockedValueBox<Int?>(nil)

    public func run() async throws {
        let serverChannel: any Channel
        do {
            serverChannel = try await bind()
        } catch {
            listening.fail(error)
            throw error
        }
        let address = serverChannel.localAddress!
        bound.withLockedValue { $0 = address.port }
        listening.succeed(address)
        logger.info(
            "gateway listening",
            metadata: [
                "server.address": "\(address)", "server.tls": "\(settings.tls != nil)",
            ])
        await withGracefulShutdownHandler {
            try? await serverChannel.closeFuture.get()
        } onGracefulShutdown: {
            serverChannel.close(promise: nil)
        }
        await drainConnections()
    }

    private func drainConnections() async {
        let open = connections.withLockedValue { Array($0.values) }
        guard !open.isEmpty else { return }
        logger.info("draining connections", metadata: ["server.connections": "\(open.count)"])
        for channel in open {
            channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
        // Wait for the last connection to close, or for the drain time: whichever signals first.
        let eventLoop = open[0].eventLoop
        let drained = eventLoop.makePromise(of: Void.self)
        let done = NIOLockedValueBox(false)
        let finish: @Sendable () -> Void = {
            if done.withLockedValue({ done in
                defer { done = true }; return !done
            }) {
                drained.succeed()
            }
        }
        EventLoopFuture.andAllComplete(open.map(\.closeFuture), on: eventLoop).whenComplete { _ in finish() }
        let timer = eventLoop.scheduleTask(in: .seconds(Int64(settings.drainSeconds))) { finish() }
        try? await drained.futureResult.get()
        timer.cancel()
        for channel in connections.withLockedValue({ Array($0.values) }) {
            try? await channel.close()
        }
    }

    private func bind() async throws -> any Channel {
        let sslContext = try settings.tls.map(Self.makeTLSContext)
        let limits = settings.limits
        let rpcLimits = settings.rpcLimits
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            // Above 256 KiB unsent the channel turns unwritable; only then does a session check its outbound limit.
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 128 * 1024, high: 256 * 1024))
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try self.initializeConnection(channel, sslContext: sslContext, limits: limits, rpcLimits: rpcLimits)
                }
            }
        return try await bootstrap.bind(host: settings.host, port: settings.port).get()
    }

    private func initializeConnection(
        _ channel: any Channel, sslContext: NIOSSLContext?, limits: ServerLimits,
        rpcLimits: RPCLimits
    ) throws {
        let key = ObjectIdentifier(channel)
        let admitted = connections.withLockedValue { open -> Bool in
            guard open.count < limits.maximumConnections else { return false }
            open[key] = channel
            return true
        }
        guard admitted else {
            logger.warning(
                "connection refused: connection limit reached",
                metadata: ["server.max_connections": "\(limits.maximumConnections)"])
            channel.close(promise: nil)
            return
        }
        channel.closeFuture.whenComplete { [connections] _ in
            _ = connections.withLockedValue { $0.removeValue(forKey: key) }
        }
        if let sslContext {
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: sslContext))
        }
        let settings = self.settings
        let http = HTTPRPCHandler(
            dispatcher: dispatcher, limits: limits, rpcLimits: rpcLimits,
            allowsOrigin: { settings.allows(origin: $0) }, access: settings.access, endpoints: endpoints)
        let dispatcher = self.dispatcher
        let logger = self.logger
        let upgrader = NIOWebSocketServerUpgrader(
            maxFrameSize: limits.maximumMessageBytes,
            shouldUpgrade: { channel, head in
                // A refused origin or caller gets no upgrade: the request falls to the HTTP handler, which answers
                // 403 or 401.
                let allowed =
                    settings.allows(origin: head.headers.first(name: "origin"))
                    && (try? settings.identity(for: head).get()) != nil
                return channel.eventLoop.makeSucceededFuture(allowed ? HTTPHeaders() : nil)
            },
            upgradePipelineHandler: { channel, head in
                channel.eventLoop.makeCompletedFuture {
                    let identity = try settings.identity(for: head).get()
                    try channel.pipeline.syncOperations.addHandlers([
                        IdleStateHandler(readTimeout: .seconds(Int64(limits.pingIntervalSeconds))),
                        NIOWebSocketFrameAggregator(
                            minNonFinalFragmentSize: 0, maxAccumulatedFrameCount: 1 << 16,
                            maxAccumulatedFrameSize: limits.maximumMessageBytes),
                        WebSocketSessionHandler(
                            dispatcher: dispatcher, limits: limits, rpcLimits: rpcLimits, identity: identity,
                            logger: logger),
                    ])
                }
            })
        try channel.pipeline.syncOperations.configureHTTPServerPipeline(
            withServerUpgrade: (
                upgraders: [upgrader],
                completionHandler: { context in context.pipeline.removeHandler(name: "rpc-http", promise: nil) }
            ),
            withErrorHandling: true)
        try channel.pipeline.syncOperations.addHandler(http, name: "rpc-http")
    }

    static func makeTLSContext(_ files: TLSFiles) throws -> NIOSSLContext {
        let chain = try NIOSSLCertificate.fromPEMFile(files.certificateChain).map {
            NIOSSLCertificateSource.certificate($0)
        }
        let key = try NIOSSLPrivateKey(file: files.privateKey, format: .pem)
        var tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
        tls.minimumTLSVersion = .tlsv12
        return try NIOSSLContext(configuration: tls)
    }
}
