import JSON
import JSONRPC
import Logging
import NIOCore
import NIOHTTP1

/// JSON-RPC over HTTP POST, plus the operator's GET endpoints (health, ready, status, metrics). WebSocket upgrades are taken by NIO's upgrade
/// handler before requests reach this handler, which is removed once a connection upgrades.
final class HTTPRPCHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case idle
        case collecting(HTTPRequestHead, ByteBuffer)
        case rejecting(HTTPRequestHead)  // body too large: ignore the rest, answer at the end
    }

    private let dispatcher: RPCDispatcher
    private let limits: ServerLimits
    private let rpcLimits: RPCLimits
    private let endpoints: OperatorEndpoints
    private let allowsOrigin: @Sendable (String?) -> Bool
    private let access: AccessControl?
    private let connectionID = ConnectionIDs.make()
    private var state = State.idle

    init(
        dispatcher: RPCDispatcher, limits: ServerLimits, rpcLimits: RPCLimits,
        allowsOrigin: @escaping @Sendable (String?) -> Bool, access: AccessControl?,
        endpoints: OperatorEndpoints
    ) {
        self.allowsOrigin = allowsOrigin
        self.access = access
        self.dispatcher = dispatcher
        self.limits = limits
        self.rpcLimits = rpcLimits
        self.endpoints = endpoints
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            if let length = head.headers.first(name: "content-length").flatMap(Int.init),
                length > limits.maximumHTTPBodyBytes
            {
                state = .rejecting(head)
            } else {
                state = .collecting(head, context.channel.allocator.buffer(capacity: 0))
            }
        case .body(var chunk):
            guard case .collecting(let head, var body) = state else { return }
            if body.readableBytes + chunk.readableBytes > limits.maximumHTTPBodyBytes {
                state = .rejecting(head)
            } else {
                body.writeBuffer(&chunk)
                state = .collecting(head, body)
            }
        case .end:
            let current = state
            state = .idle
            switch current {
            case .idle: break
            case .rejecting(let head):
                respond(
                    context: context, head: head, status: .payloadTooLarge,
                    body: Array("content length too large (limit \(limits.maximumHTTPBodyBytes) bytes)\n".utf8),
                    contentType: "text/plain")
            case .collecting(let head, var body):
                route(context: context, head: head, body: body.readBytes(length: body.readableBytes) ?? [])
            }
        }
    }

    private func route(context: ChannelHandlerContext, head: HTTPRequestHead, body: [UInt8]) {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? "/"
        guard allowsOrigin(head.headers.first(name: "origin")) else {
            return respond(
                context: context, head: head, status: .forbidden,
                body: Array("origin not allowed (server.allowedOrigins)\n".utf8), contentType: "text/plain")
        }
        let identity: Identity
        switch access?.authenticate(authorization: head.headers.first(name: "authorization"), uri: head.uri) {
        case .failure(let refusal) where path == "/" && head.method != .OPTIONS:
            // HTTP 401 (also for a refused WebSocket upgrade, which falls through to here), with the JSON-RPC
            // error EIP-1193 names for it.
            let error = RPCResponse(id: .null, error: .unauthorized(refusal.description))
            return respond(
                context: context, head: head, status: .unauthorized, body: error.bytes,
                extraHeaders: [("WWW-Authenticate", "Bearer")])
        case .success(let found): identity = found
        // Not identified (no or a wrong token, on a path that lets such callers in): no role beyond the least.
        case .failure: identity = Identity(name: "unidentified", role: .user, addresses: [])
        case .none: identity = .anonymous
        }
        switch (head.method, path) {
        case (.POST, "/"):
            handleRPC(context: context, head: head, body: body, identity: identity)
        case (.GET, "/health"), (.GET, "/ready"):
            let (ready, detail) = endpoints.health()
            respond(
                context: context, head: head, status: ready || path == "/health" ? .ok : .serviceUnavailable,
                body: Self.line(detail))
        case (.GET, "/status"):
            let detail = endpoints.status(identity.role == .admin)
            respond(context: context, head: head, status: .ok, body: Self.line(detail))
        case (.GET, "/metrics") where endpoints.metrics != nil:
            // Operational detail: the admin role where access control is on (Prometheus sends a bearer token).
            guard identity.role == .admin else {
                return respond(
                    context: context, head: head, status: .unauthorized,
                    body: Array("/metrics needs an admin token\n".utf8), contentType: "text/plain",
                    extraHeaders: [("WWW-Authenticate", "Bearer")])
            }
            respond(
                context: context, head: head, status: .ok, body: endpoints.metrics?() ?? [],
                contentType: "text/plain; version=0.0.4; charset=utf-8")
        case (.OPTIONS, _):
            respond(context: context, head: head, status: .noContent, body: [])
        case (_, "/"):
            respond(
                context: context, head: head, status: .methodNotAllowed,
                body: Array("use POST for JSON-RPC over HTTP, or upgrade to a WebSocket\n".utf8),
                contentType: "text/plain")
        default:
            respond(
                context: context, head: head, status: .notFound, body: Array("not found\n".utf8),
                contentType: "text/plain")
        }
    }

    private static func line(_ value: JSONValue) -> [UInt8] {
        var output = JSONWriter.bytes(value)
        output.append(0x0A)
        return output
    }

    private func handleRPC(context: ChannelHandlerContext, head: HTTPRequestHead, body: [UInt8], identity: Identity) {
        let session = SessionContext(connectionID: connectionID, transport: .http, sink: nil, identity: identity)
        switch RPCDecoder.decode(body, limits: rpcLimits) {
        case .failure(let error):
            respond(context: context, head: head, status: .ok, body: error.bytes)
        case .success(let message):
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let eventLoop = context.eventLoop
            dispatcher.handle(message, session: session) { response in
                eventLoop.execute {
                    let (handler, context) = bound.value
                    handler.respond(context: context, head: head, status: .ok, body: response ?? [])
                }
            }
        }
    }

    private func respond(
        context: ChannelHandlerContext, head: HTTPRequestHead, status: HTTPResponseStatus, body: [UInt8],
        contentType: String = "application/json", extraHeaders: [(String, String)] = []
    ) {
        var headers = HTTPHeaders(extraHeaders)
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: String(body.count))
        if let origin = head.headers.first(name: "origin"), allowsOrigin(origin) {
            headers.add(name: "Access-Control-Allow-Origin", value: origin)
            headers.add(name: "Vary", value: "Origin")
        }
        if head.method == .OPTIONS {
            headers.add(name: "Access-Control-Allow-Methods", value: "POST, GET, OPTIONS")
            headers.add(name: "Access-Control-Allow-Headers", value: "Content-Type, Authorization")
        }
        let keepAlive = head.isKeepAlive && status != .payloadTooLarge
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))),
            promise: nil)
        if !body.isEmpty {
            context.write(
                wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            if !keepAlive { context.close(promise: nil) }
        }
    }
}
