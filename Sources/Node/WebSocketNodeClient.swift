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

/// The gateway's one connection to its node: a WebSocket that every client's proxied call shares (ids remapped),
/// kept alive by reconnecting with backoff. Runs as a `Service`.
public final class WebSocketNodeClient: NodeConnection {
    public struct Settings: Sendable {
        public var endpoint: NodeEndpoint
        /// How long a call may wait for its answer before the client gets -32002.
        public var requestTimeout: Duration = .seconds(30)
        public var connectTimeout: Duration = .seconds(10)
        /// Silence after which the node is pinged; no frame within another interval closes the link (a half-open
        /// TCP connection would otherwise go unnoticed until TCP gives up, many minutes later).
        public var pingInterval: Duration = .seconds(10)
        public var backoff = Backoff()
        /// Largest message accepted from the node (geth's WS read limit is 32 MiB).
        public var maximumMessageBytes = 32 * 1024 * 1024
        /// CA file for `wss://` nodes with a private CA; the system trust store otherwise.
        public var trustRootsFile: String?

        public init(endpoint: NodeEndpoint) { self.endpoint = endpoint }
    }

    private struct State {
        var channel: (any Channel)?
        var pending = PendingCalls()
        var eventHandler: (@Sendable (NodeEvent) -> Void)?
        var shuttingDown = false
    }

    private let settings: Settings
    private let group: any EventLoopGroup
    private let logger: Logger
    private let state = NIOLockedValueBox(State())

    public init(settings: Settings, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger) {
        precondition(settings.endpoint.isWebSocket, "WebSocketNodeClient needs a ws:// or wss:// endpoint")
        self.settings = settings
        self.group = group
        self.logger = logger
    }

    public func setEventHandler(_ handler: @escaping @Sendable (NodeEvent) -> Void) {
        state.withLockedValue { $0.eventHandler = handler }
    }

    public var isConnected: Bool { state.withLockedValue { $0.channel != nil } }

    // MARK: Calls

    public func call(
        method: String, params: JSONValue, completion: @escaping @Sendable (Result<JSONValue, NodeError>) -> Void
    ) {
        let deadline = NIODeadline.now() + TimeAmount(settings.requestTimeout)
        let registered: (channel: any Channel, id: UInt64)? = state.withLockedValue { state in
            guard let channel = state.channel, !state.shuttingDown else { return nil }
            return (channel, state.pending.add(deadline: deadline, completion: completion))
        }
        guard let (channel, id) = registered else {
            let shuttingDown = state.withLockedValue { $0.shuttingDown }
            completion(.failure(shuttingDown ? NodeError.shuttingDown : NodeError.notSent))
            return
        }
        let bytes = UpstreamRequest.bytes(id: id, method: method, params: params)
        let frame = WebSocketFrame(
            fin: true, opcode: .text, maskKey: .random(), data: channel.allocator.buffer(bytes: bytes))
        channel.writeAndFlush(frame).whenFailure { [self] _ in
            // Never written: nothing reached the node.
            if let completion = state.withLockedValue({ $0.pending.complete(id: id) }) {
                completion(.failure(NodeError.notSent))
            }
        }
    }

    // MARK: Inbound (called on the connection's event loop, in arrival order)

    fileprivate func received(_ message: JSONValue) {
        if case .array(let items) = message {
            for item in items { received(item) }
            return
        }
        if message["method"]?.stringValue == "eth_subscription" {
            guard let subscription = message["params"]?["subscription"]?.stringValue,
                let result = message["params"]?["result"]
            else { return }
            emit(.notification(subscription: subscription, result: result))
            return
        }
        guard let idText = message["id"]?.numberText, let id = UInt64(idText) else {
            logger.debug(
                "node sent a message without a known id",
                metadata: ["node.message": "\(JSONWriter.string(message).prefix(200))"])
            return
        }
        guard let completion = state.withLockedValue({ $0.pending.complete(id: id) }) else { return }
        do {
            let response = try RPCResponse(json: message)
            completion(response.outcome.mapError(NodeError.answered))
        } catch {
            completion(.failure(NodeError.malformedResponse(error.message)))
        }
    }

    fileprivate func logNodeSilent() {
        logger.warning(
            "node did not answer a ping; reconnecting", metadata: ["node.url": "\(settings.endpoint.redacted)"])
    }

    private func emit(_ event: NodeEvent) {
        state.withLockedValue { $0.eventHandler }?(event)
    }

    // MARK: Service

    public func run() async throws {
        let sweeper = group.next().scheduleRepeatedTask(initialDelay: .seconds(1), delay: .milliseconds(500)) {
            [self] _ in
            let expired = state.withLockedValue { $0.pending.removeExpired(now: .now()) }
            for completion in expired { completion(.failure(NodeError.timeout)) }
        }
        defer { sweeper.cancel() }
        await withGracefulShutdownHandler {
            await connectionLoop()
        } onGracefulShutdown: { [self] in
            let channel = state.withLockedValue { state -> (any Channel)? in
                state.shuttingDown = true
                return state.channel
            }
            channel?.close(promise: nil)
        }
        let failed = state.withLockedValue { $0.pending.removeAll() }
        for completion in failed { completion(.failure(NodeError.shuttingDown)) }
    }

    private var shuttingDown: Bool { state.withLockedValue { $0.shuttingDown } }

    private func connectionLoop() async {
        var backoff = settings.backoff
        while !shuttingDown && !Task.isCancelled {
            do {
                let channel = try await connect()
                let accepted = state.withLockedValue { state -> Bool in
                    guard !state.shuttingDown else { return false }
                    state.channel = channel
                    return true
                }
                guard accepted else {
                    try? await channel.close()
                    break
                }
                backoff.reset()
                logger.info("connected to node", metadata: ["node.url": "\(settings.endpoint.redacted)"])
                emit(.connected)
                try? await channel.closeFuture.get()
                let failed = state.withLockedValue { state in
                    state.channel = nil
                    return state.pending.removeAll()
                }
                // Disconnected first: listeners (the subscription multiplexer) must know that the failures that
                // follow come from the lost connection, not from the node refusing.
                emit(.disconnected)
                for completion in failed { completion(.failure(NodeError.connectionLost)) }
                if !shuttingDown {
                    logger.warning(
                        "node connection lost; reconnecting", metadata: ["node.url": "\(settings.endpoint.redacted)"])
                }
            } catch {
                logger.warning(
                    "cannot connect to node",
                    metadata: ["node.url": "\(settings.endpoint.redacted)", "error": "\(error)"])
            }
            if shuttingDown { break }
            try? await Task.sleep(for: backoff.nextDelay())
        }
    }

    private func connect() async throws -> any Channel {
        let endpoint = settings.endpoint
        let sslContext: NIOSSLContext? = try endpoint.usesTLS ? makeTLSContext() : nil
        let upgraded = group.next().makePromise(of: Void.self)
        let maximumMessageBytes = settings.maximumMessageBytes
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(TimeAmount(settings.connectTimeout))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        let tls = try NIOSSLClientHandler(
                            context: sslContext, serverHostname: endpoint.host.isIPAddress ? nil : endpoint.host)
                        try channel.pipeline.syncOperations.addHandler(tls)
                    }
                    let upgrader = NIOWebSocketClientUpgrader(maxFrameSize: maximumMessageBytes) { channel, _ in
                        // The request handler's job is done; WebSocket frames must not reach it.
                        channel.pipeline.removeHandler(name: "upgrade-request").flatMapThrowing {
                            try channel.pipeline.syncOperations.addHandlers([
                                IdleStateHandler(readTimeout: TimeAmount(self.settings.pingInterval)),
                                NIOWebSocketFrameAggregator(
                                    minNonFinalFragmentSize: 0, maxAccumulatedFrameCount: 1 << 16,
                                    maxAccumulatedFrameSize: maximumMessageBytes),
                                NodeFrameHandler(client: self),
                            ])
                        }
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers(
                        withClientUpgrade: (upgraders: [upgrader], completionHandler: { _ in upgraded.succeed() }))
                    try channel.pipeline.syncOperations.addHandler(
                        UpgradeRequestHandler(endpoint: endpoint, upgraded: upgraded), name: "upgrade-request")
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: endpoint.host, port: endpoint.port).get()
        } catch {
            upgraded.fail(error)  // a promise must be completed, even when the connection never existed
            throw error
        }
        let timeout = channel.eventLoop.scheduleTask(in: TimeAmount(settings.connectTimeout)) {
            upgraded.fail(ChannelError.connectTimeout(TimeAmount(self.settings.connectTimeout)))
        }
        channel.closeFuture.whenComplete { _ in upgraded.fail(ChannelError.ioOnClosedChannel) }
        do {
            try await upgraded.futureResult.get()
            timeout.cancel()
            return channel
        } catch {
            timeout.cancel()
            try? await channel.close()
            throw error
        }
    }

    private func makeTLSContext() throws -> NIOSSLContext {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        if let file = settings.trustRootsFile {
            tls.trustRoots = .file(file)
        }
        return try NIOSSLContext(configuration: tls)
    }
}

extension String {
    /// Certificates name hosts, not addresses: SNI is skipped for literal IPs.
    var isIPAddress: Bool {
        (try? SocketAddress(ipAddress: self, port: 0)) != nil
    }
}

/// Writes the HTTP upgrade request once the TCP (and TLS) connection is up; fails the connect if the node refuses.
private final class UpgradeRequestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let endpoint: NodeEndpoint
    private let upgraded: EventLoopPromise<Void>

    init(endpoint: NodeEndpoint, upgraded: EventLoopPromise<Void>) {
        self.endpoint = endpoint
        self.upgraded = upgraded
    }

    func channelActive(context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: endpoint.hostHeader)
        headers.add(name: "Content-Length", value: "0")
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: endpoint.path, headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Only reached when the upgrade was refused: the node answered with a plain HTTP response.
        if case .head(let head) = unwrapInboundIn(data) {
            upgraded.fail(NodeConnectError(message: "node refused the WebSocket upgrade: HTTP \(head.status.code)"))
            context.close(promise: nil)
        }
    }
}

struct NodeConnectError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// Hands every message from the node to the client, answers pings, pings a silent node (closing the link when
/// it stays silent), and closes on a close frame.
private final class NodeFrameHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let client: WebSocketNodeClient
    private var awaitingPong = false

    init(client: WebSocketNodeClient) { self.client = client }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read else {
            return context.fireUserInboundEventTriggered(event)
        }
        if awaitingPong {
            client.logNodeSilent()
            context.close(promise: nil)
            return
        }
        awaitingPong = true
        let ping = WebSocketFrame(
            fin: true, opcode: .ping, maskKey: .random(), data: context.channel.allocator.buffer(capacity: 0))
        context.writeAndFlush(wrapOutboundOut(ping), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        awaitingPong = false
        switch frame.opcode {
        case .text, .binary:
            let data = frame.unmaskedData
            let parsed = data.withUnsafeReadableBytes { try? JSONParser.parse($0) }
            if let parsed { client.received(parsed) }
        case .ping:
            let pong = WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: frame.unmaskedData)
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
        case .connectionClose:
            context.close(promise: nil)
        default:
            break
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
