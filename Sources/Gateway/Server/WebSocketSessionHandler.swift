import JSON
import JSONRPC
import Logging
import NIOCore
import NIOWebSocket

/// One dApp's WebSocket connection, on its event loop: JSON-RPC messages in text or binary frames, responses and
/// notifications out, pings on idle, and two protections — reads pause while too many requests are in flight, and a
/// client that stops taking its messages is disconnected (1008) before its queue can grow memory.
final class WebSocketSessionHandler: ChannelDuplexHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let dispatcher: RPCDispatcher
    private let limits: ServerLimits
    private let rpcLimits: RPCLimits
    private var logger: Logger
    let connectionID: UInt64

    private var context: ChannelHandlerContext?
    private var sink: SessionSink?
    private var inFlight = 0
    private var readSuppressed = false
    /// Between channelRead and channelReadComplete: writes are flushed once at the end.
    private var inReadBurst = false
    private var awaitingPong = false
    private var closing = false
    private var needsFlush = false
    /// Graceful shutdown: finish what is in flight, then close with 1001.
    private var draining = false
    /// Subscription ids confirmed inside a batch whose response is not written yet: their notifications wait, so that
    /// none arrives before the response that announces the id.
    private var heldSubscriptions: [String: [[UInt8]]] = [:]

    init(dispatcher: RPCDispatcher, limits: ServerLimits, rpcLimits: RPCLimits, logger: Logger) {
        self.dispatcher = dispatcher
        self.limits = limits
        self.rpcLimits = rpcLimits
        self.connectionID = ConnectionIDs.make()
        self.logger = logger
        self.logger[metadataKey: "connection.id"] = "\(connectionID)"
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        sink = SessionSink(connectionID: connectionID, handler: NIOLoopBound(self, eventLoop: context.eventLoop))
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        sink = nil  // the sink holds this handler: break the cycle when the connection is gone
    }

    func channelInactive(context: ChannelHandlerContext) {
        closing = true
        dispatcher.connectionClosed(connectionID)
        logger.debug("websocket connection closed")
        context.fireChannelInactive()
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        awaitingPong = false
        inReadBurst = true
        switch frame.opcode {
        case .text, .binary:
            handleMessage(frame.unmaskedData.readableBytesView)
        case .ping:
            send(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData))
        case .pong:
            break
        case .connectionClose:
            var data = frame.unmaskedData
            let code = data.readWebSocketErrorCode() ?? .normalClosure
            close(code: code, reason: nil)
        default:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        inReadBurst = false
        flushIfNeeded()
        context.fireChannelReadComplete()
    }

    private func handleMessage(_ bytes: ByteBufferView) {
        switch RPCDecoder.decode(bytes, limits: rpcLimits) {
        case .failure(let error):
            write(error.bytes)
        case .success(let message):
            let isBatch: Bool
            if case .batch = message { isBatch = true } else { isBatch = false }
            inFlight += 1
            let session = SessionContext(connectionID: connectionID, transport: .webSocket, sink: sink)
            let bound = NIOLoopBound(self, eventLoop: context!.eventLoop)
            let eventLoop = context!.eventLoop
            dispatcher.handle(message, session: session) { response in
                if eventLoop.inEventLoop {
                    bound.value.completed(response, isBatch: isBatch)
                } else {
                    eventLoop.execute { bound.value.completed(response, isBatch: isBatch) }
                }
            }
        }
    }

    private func completed(_ response: [UInt8]?, isBatch: Bool) {
        inFlight -= 1
        if let response {
            write(response)
            if !heldSubscriptions.isEmpty { releaseSubscriptions(announcedIn: response, all: isBatch) }
        }
        if draining && inFlight == 0 {
            close(code: .goingAway, reason: "server shutting down")
            return
        }
        if readSuppressed && inFlight < limits.maximumInFlightPerConnection {
            readSuppressed = false
            context?.read()
        }
    }

    // MARK: Outbound

    /// Reads are paused while the connection has as many requests in flight as it may: backpressure, not errors.
    func read(context: ChannelHandlerContext) {
        if inFlight >= limits.maximumInFlightPerConnection {
            readSuppressed = true
        } else {
            context.read()
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            draining = true
            if inFlight == 0 { close(code: .goingAway, reason: "server shutting down") }
            return
        }
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            if awaitingPong {
                logger.info("websocket client did not answer ping; closing")
                close(code: .goingAway, reason: "ping timeout")
            } else {
                awaitingPong = true
                send(WebSocketFrame(fin: true, opcode: .ping, data: context.channel.allocator.buffer(capacity: 0)))
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? NIOWebSocketError, error == .invalidFrameLength {
            close(code: .messageTooLarge, reason: "message too large")
        } else {
            logger.debug("websocket error", metadata: ["error": "\(error)"])
            close(code: .protocolError, reason: nil)
        }
    }

    fileprivate func deliver(notification: [UInt8], subscription: String) {
        if heldSubscriptions[subscription] != nil {
            heldSubscriptions[subscription]!.append(notification)
        } else {
            write(notification, flush: true)
        }
    }

    fileprivate func hold(subscription: String) {
        heldSubscriptions[subscription] = heldSubscriptions[subscription] ?? []
    }

    /// Notifications of a subscription wait until the response carrying its id has been written.
    /// A batch releases everything it held (an item may have been replaced by -32003 and no longer name its id).
    private func releaseSubscriptions(announcedIn response: [UInt8], all: Bool) {
        for (id, messages) in heldSubscriptions where all || response.firstRange(of: Array(id.utf8)) != nil {
            heldSubscriptions.removeValue(forKey: id)
            for message in messages { write(message, flush: true) }
        }
    }

    /// Writes one text frame. Inside a read burst the flush waits for channelReadComplete (one syscall for all the
    /// responses of a pipelined burst); otherwise it happens at once.
    ///
    /// The outbound limit costs nothing while the client keeps up: only when NIO reports the channel unwritable
    /// (its write buffer above the high-water mark) are the buffered bytes looked at.
    private func write(_ bytes: [UInt8], flush: Bool = false) {
        guard let context, !closing else { return }
        if !context.channel.isWritable,
            let buffered = try? context.channel.syncOptions?.getOption(.bufferedWritableBytes),
            buffered + bytes.count > limits.maximumOutboundBytes
        {
            logger.warning("websocket client is not reading; disconnecting",
                           metadata: ["connection.outbound_bytes": "\(buffered + bytes.count)"])
            close(code: .policyViolation, reason: "client too slow: outbound queue full")
            return
        }
        let frame = WebSocketFrame(fin: true, opcode: .text, data: context.channel.allocator.buffer(bytes: bytes))
        context.write(wrapOutboundOut(frame), promise: nil)
        if flush || !inReadBurst {
            context.flush()
        } else {
            needsFlush = true
        }
    }

    private func flushIfNeeded() {
        guard needsFlush, let context else { return }
        needsFlush = false
        context.flush()
    }

    private func send(_ frame: WebSocketFrame) {
        guard let context, !closing else { return }
        context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
    }

    func close(code: WebSocketErrorCode, reason: String?) {
        guard let context, !closing else { return }
        closing = true
        var data = context.channel.allocator.buffer(capacity: 2 + (reason?.utf8.count ?? 0))
        data.write(webSocketErrorCode: code)
        if let reason { data.writeString(reason) }
        let frame = WebSocketFrame(fin: true, opcode: .connectionClose, data: data)
        context.writeAndFlush(wrapOutboundOut(frame)).whenComplete { _ in context.close(promise: nil) }
        // A client that does not read may never take the close frame: do not wait for it.
        context.eventLoop.scheduleTask(in: .seconds(Int64(limits.writeTimeoutSeconds))) { context.close(promise: nil) }
    }
}

/// The handler's face towards the subscription hub: any thread may deliver; delivery hops to the connection's loop.
final class SessionSink: SubscriptionSink {
    let connectionID: UInt64
    private let handler: NIOLoopBound<WebSocketSessionHandler>

    init(connectionID: UInt64, handler: NIOLoopBound<WebSocketSessionHandler>) {
        self.connectionID = connectionID
        self.handler = handler
    }

    func deliver(notification: [UInt8], subscription: String) {
        let handler = self.handler
        handler.eventLoop.execute { handler.value.deliver(notification: notification, subscription: subscription) }
    }

    /// Called before the reply that announces `subscription`: its notifications are held until a response has been
    /// written, so none can overtake the reply (a batch's ids wait for the whole batch).
    func willAnnounce(subscription: String) {
        let handler = self.handler
        if handler.eventLoop.inEventLoop {
            handler.value.hold(subscription: subscription)
        } else {
            handler.eventLoop.execute { handler.value.hold(subscription: subscription) }
        }
    }
}
