import ArgumentParser
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// The reference point of REFERENCE §7: the cheapest useful NIO WebSocket server, a plain ChannelHandler that
/// answers every message with a canned JSON-RPC response. The gateway's cached `eth_chainId` path is compared
/// against it in the same run (loadtest/compare.sh).
struct EchoServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "echo-server",
        abstract: "Raw NIO WebSocket server answering every message at once.")

    @Option var host = "127.0.0.1"
    @Option var port = 0
    @Option(help: "Server event-loop threads.") var threads = 1

    func run() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let upgrader = NIOWebSocketServerUpgrader(
                        maxFrameSize: 1 << 24,
                        shouldUpgrade: { channel, _ in channel.eventLoop.makeSucceededFuture(HTTPHeaders()) },
                        upgradePipelineHandler: { channel, _ in
                            channel.eventLoop.makeCompletedFuture {
                                try channel.pipeline.syncOperations.addHandler(EchoHandler())
                            }
                        })
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withServerUpgrade: (upgraders: [upgrader], completionHandler: { _ in }))
                }
            }
        let channel = try await bootstrap.bind(host: host, port: port).get()
        // Unbuffered, so that a script waiting for this line sees it at once.
        FileHandle.standardOutput.write(
            Data("echo-server listening on ws://\(host):\(channel.localAddress!.port!)/\n".utf8))
        try await channel.closeFuture.get()
    }
}

private final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame
    private let response = ByteBuffer(string: #"{"jsonrpc":"2.0","id":1,"result":"0x539"}"#)

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text, .binary:
            context.write(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .text, data: response)), promise: nil)
        case .connectionClose:
            context.close(promise: nil)
        default:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) { context.flush() }
}
