import JSON
import JSONRPC
import Logging
import NIOCore
import NIOWebSocket

/// One dApp's WebSocket connection, on its event loop: JSON-RPC messages in text or binary frames, responses and
/// notifications out, pings on idle, and two protections — reads pause while too many requests are in flight, and a
/// client that stops taking its messages is disconnected (1008) before its queue can grow memory.
///
/// The decisions are `WebSocketSessionStateMachine`'s; this handler translates NIO's events into its events and
/// performs the actions it returns. It stays a plain handler because the per-frame path is measured: actions are
/// enum values, not arrays, so a frame costs no more allocations than its dispatch.
final class WebSocketSessionHandler: ChannelDuplexHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame
    typealias Machine = WebSocketSessionStateMachine

    private let dispatcher: RPCDispatcher
    private let limits: ServerLimits
    private let rpcLimits: RPCLimits
    /// Who opened the connection (decided once, at the upgrade).
    private let identity: Identity
    private var logger: Logger
    let connectionID: UInt64

    private var context: ChannelHandlerContext?
    private var sink: SessionSink?
    private var machine: Machine
    /// Subscription ids confirmed inside a batch whose response is not written yet: their notifications wait, so that
    /// none arrives before the response that announces the id.
    private var heldSubscriptions: [String: [[UInt8]]] = [:]

    init(
        dispatcher: RPCDispatcher, limits: ServerLimits, rpcLimits: RPCLimits, identity: Identity = .anonymous,
        logger: Logger
    ) {
        self.identity = identity
        self.dispatcher = dispatcher
        self.limits = limits
        self.rpcLimits = rpcLimits
        self.machine = Machine(maximumInFlight: limits.maximumInFlightPerConnection)
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
        machine.channelInactive()
        dispatcher.connectionClosed(connectionID)
        logger.debug("websocket connection closed")
        context.fireChannelInactive()
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        let inbound: Machine.InboundFrame
        switch frame.opcode {
        case .text, .binary:
            inbound = .message(frame.unmaskedData)
        case .ping:
            inbound = .ping(frame.unmaskedData)
        case .pong:
            inbound = .pong
        case .connectionClose:
            var data = frame.unmaskedData
            inbound = .close(data.readWebSocketErrorCode() ?? .normalClosure)
        default:
            inbound = .other
        }
        perform(machine.frameReceived(inbound))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        perform(machine.readBurstComplete())
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            perform(machine.quiesceRequested())
            return
        }
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            let action = machine.idleTimerFired()
            if case .close = action { logger.info("websocket client did not answer ping; closing") }
            perform(action)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? NIOWebSocketError, error == .invalidFrameLength {
            perform(machine.errorCaught(messageTooLarge: true))
        } else {
            logger.debug("websocket error", metadata: ["error": "\(error)"])
            perform(machine.errorCaught(messageTooLarge: false))
        }
    }

    private func dispatch(_ payload: ByteBuffer, context: ChannelHandlerContext) {
        switch RPCDecoder.decode(payload.readableBytesView, limits: rpcLimits) {
        case .failure(let error):
            // Answered at once: counted in flight like any message, and done.
            write(error.bytes)
            perform(machine.responseCompleted())
        case .success(let message):
            let isBatch: Bool
            if case .batch = message { isBatch = true } else { isBatch = false }
            let session = SessionContext(
                connectionID: connectionID, transport: .webSocket, sink: sink, identity: identity)
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            let eventLoop = context.eventLoop
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
        if let response {
            write(response)
            if !heldSubscriptions.isEmpty { releaseSubscriptions(announcedIn: response, all: isBatch) }
        }
        perform(machine.responseCompleted())
    }

    // MARK: Outbound

    func read(context: ChannelHandlerContext) {
        perform(machine.readRequested())
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

    /// Writes one text frame (see `Machine.frameReady` for when it is flushed).
    ///
    /// The outbound limit costs nothing while the client keeps up: only when NIO reports the channel unwritable
    /// (its write buffer above the high-water mark) are the buffered bytes looked at.
    private func write(_ bytes: [UInt8], flush: Bool = false) {
        guard let context else { return }
        if !context.channel.isWritable,
            let buffered = try? context.channel.syncOptions?.getOption(.bufferedWritableBytes),
            buffered + bytes.count > limits.maximumOutboundBytes
        {
            let action = machine.outboundLimitExceeded()
            if case .close = action {
                logger.warning(
                    "websocket client is not reading; disconnecting",
                    metadata: ["connection.outbound_bytes": "\(buffered + bytes.count)"])
            }
            perform(action)
            return
        }
        perform(machine.frameReady(bytes, flush: flush))
    }

    private func perform(_ action: Machine.Action) {
        guard let context else { return }
        switch action {
        case .none:
            break
        case .dispatch(let payload):
            dispatch(payload, context: context)
        case .write(let bytes, let flush):
            let frame = WebSocketFrame(fin: true, opcode: .text, data: context.channel.allocator.buffer(bytes: bytes))
            context.write(wrapOutboundOut(frame), promise: nil)
            if flush { context.flush() }
        case .flush:
            context.flush()
        case .read:
            context.read()
        case .pong(let payload):
            let frame = WebSocketFrame(fin: true, opcode: .pong, data: payload)
            context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
        case .ping:
            let frame = WebSocketFrame(fin: true, opcode: .ping, data: context.channel.allocator.buffer(capacity: 0))
            context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
        case .close(let code, let reason):
            sendClose(code: code, reason: reason?.rawValue, context: context)
        }
    }

    private func sendClose(code: WebSocketErrorCode, reason: String?, context: ChannelHandlerContext) {
        var data = context.channel.allocator.buffer(capacity: 2 + (reason?.utf8.count ?? 0))
        data.write(webSocketErrorCode: code)
        if let reason { data.writeString(reason) }
        let frame = WebSocketFrame(fin: true, opcode: .connectionClose, data: data)
        // Both callbacks run on the channel's loop, where the context may be used.
        context.writeAndFlush(wrapOutboundOut(frame)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        // A client that does not read may never take the close frame: do not wait for it.
        context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(Int64(limits.writeTimeoutSeconds))) {
            context.close(promise: nil)
        }
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
