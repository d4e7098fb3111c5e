import AsyncHTTPClient
import JSON
import JSONRPC
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import ServiceLifecycle

/// The node link for nodes without WebSocket: each call is one HTTP POST (pooled keep-alive connections,
/// AsyncHTTPClient). Subscriptions cannot be carried; the node's own answer to `eth_subscribe` says so.
public final class HTTPNodeClient: NodeConnection {
    public struct Settings: Sendable {
        public var endpoint: NodeEndpoint
        public var requestTimeout: Duration = .seconds(30)
        /// How often the latest block is asked for (an HTTP node cannot push new heads).
        public var headPollInterval: Duration = .seconds(1)
        public var maximumResponseBytes = 32 * 1024 * 1024
        public var trustRootsFile: String?

        public init(endpoint: NodeEndpoint) { self.endpoint = endpoint }
    }

    private struct State {
        var eventHandler: (@Sendable (NodeEvent) -> Void)?
        var reachable = false
        var nextID: UInt64 = 1
    }

    private let settings: Settings
    private let client: HTTPClient
    private let logger: Logger
    private let state = NIOLockedValueBox(State())

    public init(
        settings: Settings, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger
    ) throws {
        precondition(!settings.endpoint.isWebSocket, "HTTPNodeClient needs an http:// or https:// endpoint")
        self.settings = settings
        self.logger = logger
        var clientConfiguration = HTTPClient.Configuration()
        clientConfiguration.timeout = .init(connect: .seconds(10), read: TimeAmount(settings.requestTimeout))
        if let file = settings.trustRootsFile {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .file(file)
            clientConfiguration.tlsConfiguration = tls
        }
        client = HTTPClient(eventLoopGroupProvider: .shared(group), configuration: clientConfiguration)
    }

    public var isConnected: Bool { state.withLockedValue { $0.reachable } }

    public func setEventHandler(_ handler: @escaping @Sendable (NodeEvent) -> Void) {
        state.withLockedValue { $0.eventHandler = handler }
    }

    public func call(
        method: String, params: JSONValue, completion: @escaping @Sendable (Result<JSONValue, NodeError>) -> Void
    ) {
        let id = state.withLockedValue { state -> UInt64 in
            defer { state.nextID &+= 1 }
            return state.nextID
        }
        let body = UpstreamRequest.bytes(id: id, method: method, params: params)
        post(body, completion: completion)
    }

    /// One POST on AsyncHTTPClient's event-loop API: the completion runs when the answer (or the failure) is in,
    /// with no task of its own to outlive the client.
    private func post(_ body: [UInt8], completion: @escaping @Sendable (Result<JSONValue, NodeError>) -> Void) {
        let request: HTTPClient.Request
        do {
            request = try HTTPClient.Request(
                url: settings.endpoint.url, method: .POST, headers: ["Content-Type": "application/json"],
                body: .bytes(body))
        } catch {
            return completion(.failure(.notSent))
        }
        let accumulator = ResponseAccumulator(request: request, maxBodySize: settings.maximumResponseBytes)
        let logger = self.logger
        client.execute(request: request, delegate: accumulator, deadline: .now() + TimeAmount(settings.requestTimeout))
            .futureResult.whenComplete { result in
                switch result {
                case .success(let response):
                    completion(Self.decode(response))
                case .failure(let error as HTTPClientError):
                    switch error {
                    case .deadlineExceeded, .readTimeout: completion(.failure(.timeout))
                    case .connectTimeout: completion(.failure(.notSent))  // never connected: nothing was sent
                    default: completion(.failure(.connectionLost))
                    }
                case .failure(is NIOConnectionError):
                    completion(.failure(.notSent))
                case .failure(let error):
                    logger.debug("HTTP call to node failed", metadata: ["error": "\(error)"])
                    completion(.failure(.connectionLost))
                }
            }
    }

    private static func decode(_ response: HTTPClient.Response) -> Result<JSONValue, NodeError> {
        guard response.status == .ok else { return .failure(.httpStatus(Int(response.status.code))) }
        let bytes = response.body.map { Array($0.readableBytesView) } ?? []
        do {
            return try RPCResponse(json: try JSONParser.parse(bytes)).outcome.mapError(NodeError.answered)
        } catch let error as RPCError {
            return .failure(.malformedResponse(error.message))
        } catch {
            return .failure(.malformedResponse("\(error)"))
        }
    }

    private func post(_ body: [UInt8]) async -> Result<JSONValue, NodeError> {
        await withCheckedContinuation { continuation in post(body) { continuation.resume(returning: $0) } }
    }

    /// Probes the node until it answers and reports it connected, then follows the chain: an HTTP node cannot
    /// push new heads, so its latest block is polled and announced as `.polledHead`. Closes the client on shutdown.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var backoff = Backoff()
            while !Task.isCancelled {
                if case .success = await self.post(
                    UpstreamRequest.bytes(id: 0, method: "eth_chainId", params: .array([])))
                {
                    break
                }
                guard (try? await Task.sleep(for: backoff.nextDelay())) != nil else { return }
            }
            guard !Task.isCancelled else { return }
            let handler = self.state.withLockedValue { state in
                state.reachable = true
                return state.eventHandler
            }
            self.logger.info("node reachable over HTTP", metadata: ["node.url": "\(self.settings.endpoint.redacted)"])
            handler?(.connected)
            await self.pollHeads(handler)
        }
        try? await gracefulShutdown()
        try await client.shutdown()
    }

    private func pollHeads(_ handler: (@Sendable (NodeEvent) -> Void)?) async {
        var last: String? = nil
        while !Task.isCancelled {
            let latest = await post(
                UpstreamRequest.bytes(id: 0, method: "eth_getBlockByNumber", params: ["latest", false]))
            if case .success(let block) = latest, let hash = block["hash"]?.stringValue, hash != last {
                last = hash
                handler?(.polledHead(block))
            }
            guard (try? await Task.sleep(for: settings.headPollInterval)) != nil else { return }
        }
    }
}
