import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

struct WebSocketTarget: Sendable {
    let host: String
    let port: Int
    let path: String

    init?(url: String) {
        guard url.hasPrefix("ws://") else { return nil }
        let rest = url.dropFirst(5)
        let authority = rest.prefix { $0 != "/" }
        let path = rest.dropFirst(authority.count)
        guard let colon = authority.lastIndex(of: ":"), let port = Int(authority[authority.index(after: colon)...])
        else {
            return nil
        }
        host = String(authority[..<colon])
        self.port = port
        self.path = path.isEmpty ? "/" : String(path)
    }
}

/// One pipelined client connection: keeps `depth` requests outstanding and measures each answer's latency.
/// Responses are matched in order (JSON-RPC servers answer a connection's requests in order when they are as
/// cheap as eth_chainId; the count is what matters for throughput).
final class LoadConnection: @unchecked Sendable {
    private let target: WebSocketTarget
    private let depth: Int
    private let method: String
    private let params: String
    private let recorder: Recorder
    private var channel: (any Channel)?
    private let seed: Int

    init(target: WebSocketTarget, depth: Int, method: String, params: String, recorder: Recorder, seed: Int) {
        self.target = target
        self.depth = depth
        self.method = method
        self.params = params
        self.recorder = recorder
        self.seed = seed
    }

    func connect(group: any EventLoopGroup) async throws {
        let upgraded = group.next().makePromise(of: Void.self)
        let target = self.target
        let depth = self.depth, method = self.method, params = self.params, recorder = self.recorder
        let bootstrap = ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let upgrader = NIOWebSocketClientUpgrader(maxFrameSize: 1 << 24) { channel, _ in
                        channel.pipeline.removeHandler(name: "request").flatMapThrowing {
                            try channel.pipeline.syncOperations.addHandler(
                                PipelinedRequestHandler(
                                    depth: depth, method: method, params: params, recorder: recorder))
                        }
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers(
                        withClientUpgrade: (upgraders: [upgrader], completionHandler: { _ in upgraded.succeed() }))
                    try channel.pipeline.syncOperations.addHandler(UpgradeRequest(target: target), name: "request")
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: target.host, port: target.port).get()
        } catch {
            upgraded.fail(error)
            throw error
        }
        // A refused upgrade closes the connection: fail instead of waiting for ever.
        channel.closeFuture.whenComplete { _ in upgraded.fail(ChannelError.ioOnClosedChannel) }
        try await upgraded.futureResult.get()
        self.channel = channel
    }

    func start() { channel?.pipeline.fireUserInboundEventTriggered(StartEvent()) }
    func stop() { channel?.close(promise: nil) }
}

struct StartEvent {}

private final class UpgradeRequest: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart
    let target: WebSocketTarget
    init(target: WebSocketTarget) { self.target = target }

    func channelActive(context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: "\(target.host):\(target.port)")
        context.write(
            wrapOutboundOut(
                .head(HTTPRequestHead(version: .http1_1, method: .GET, uri: target.path, headers: headers))),
            promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }
}

private final class PipelinedRequestHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let depth: Int
    private let method: String
    private let params: String
    private let recorder: Recorder
    private var nextID = 0
    private var sentAt: [UInt64] = []  // FIFO of send times
    private var head = 0
    private var running = false
    private static let errorMarker = Array(#""error""#.utf8)

    init(depth: Int, method: String, params: String, recorder: Recorder) {
        self.depth = depth
        self.method = method
        self.params = params
        self.recorder = recorder
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is StartEvent, !running else { return }
        running = true
        for _ in 0..<depth { send(context: context, flush: false) }
        context.flush()
    }

    private lazy var requestPrefix = Array(#"{"jsonrpc":"2.0","id":"#.utf8)
    private lazy var requestSuffix = Array(#","method":"\#(method)","params":\#(params)}"#.utf8)

    private func send(context: ChannelHandlerContext, flush: Bool) {
        nextID += 1
        var buffer = context.channel.allocator.buffer(capacity: requestPrefix.count + requestSuffix.count + 12)
        buffer.writeBytes(requestPrefix)
        buffer.writeString(String(nextID))
        buffer.writeBytes(requestSuffix)
        let frame = WebSocketFrame(fin: true, opcode: .text, maskKey: .random(), data: buffer)
        sentAt.append(DispatchTime.now().uptimeNanoseconds)
        if flush {
            context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
        } else {
            context.write(wrapOutboundOut(frame), promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard frame.opcode == .text || frame.opcode == .binary, head < sentAt.count else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        // Responses put "error" right after the id: looking at the head of the frame is enough.
        let isError = frame.data.readableBytesView.prefix(48).firstRange(of: Self.errorMarker) != nil
        recorder.record(latencyNanoseconds: now - sentAt[head], isError: isError)
        head += 1
        if head > 4096 {
            sentAt.removeFirst(head)
            head = 0
        }
        send(context: context, flush: false)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
