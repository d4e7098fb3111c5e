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
    public struct Configuration: Sendable {
        public var endpoint: NodeEndpoint
        public var requestTimeout: TimeAmount = .seconds(30)
        public var maximumResponseBytes = 32 * 1024 * 1024
        public var trustRootsFile: String?

        public init(endpoint: NodeEndpoint) { self.endpoint = endpoint }
    }

    private struct State {
        var eventHandler: (@Sendable (NodeEvent) -> Void)?
        var reachable = false
        var nextID: UInt64 = 1
    }

    private let configuration: Configuration
    private let client: HTTPClient
    private let logger: Logger
    private let state = NIOLockedValueBox(State())

    public init(configuration: Configuration, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                logger: Logger) throws {
        precondition(!configuration.endpoint.isWebSocket, "HTTPNodeClient needs an http:// or https:// endpoint")
        self.configuration = configuration
        self.logger = logger
        var clientConfiguration = HTTPClient.Configuration()
        clientConfiguration.timeout = .init(connect: .seconds(10), read: configuration.requestTimeout)
        if let file = configuration.trustRootsFile {
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

    public func call(method: String, params: JSONValue, completion: @escaping @Sendable (Result<JSONValue, NodeError>) -> Void) {
        let id = state.withLockedValue { state -> UInt64 in
            defer { state.nextID &+= 1 }
            return state.nextID
        }
        let body = UpstreamRequest.bytes(id: id, method: method, params: params)
        Task { completion(await post(body)) }
    }

    private func post(_ body: [UInt8]) async -> Result<JSONValue, NodeError> {
        var request = HTTPClientRequest(url: configuration.endpoint.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: body))
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: configuration.requestTimeout)
        } catch let error as HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout: return .failure(NodeError.timeout)
            case .connectTimeout: return .failure(NodeError.notSent)  // never connected: nothing was sent
            default: return .failure(NodeError.connectionLost)
            }
        } catch is NIOConnectionError {
            return .failure(NodeError.notSent)
        } catch {
            logger.debug("HTTP call to node failed", metadata: ["error": "\(error)"])
            return .failure(NodeError.connectionLost)
        }
        guard response.status == .ok else {
            return .failure(.httpStatus(Int(response.status.code)))
        }
        do {
            var buffer = try await response.body.collect(upTo: configuration.maximumResponseBytes)
            let bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
            return try RPCResponse(json: try JSONParser.parse(bytes)).outcome.mapError(NodeError.answered)
        } catch let error as RPCError {
            return .failure(NodeError.malformedResponse(error.message))
        } catch {
            return .failure(NodeError.malformedResponse("\(error)"))
        }
    }

    /// Probes the node until it answers, then reports it connected; closes the client on shutdown.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var delay = 100
            while !Task.isCancelled {
                if case .success = await self.post(UpstreamRequest.bytes(id: 0, method: "eth_chainId", params: .array([]))) {
                    break
                }
                try? await Task.sleep(for: .milliseconds(delay))
                delay = min(delay * 2, 5_000)
            }
            guard !Task.isCancelled else { return }
            let handler = self.state.withLockedValue { state in
                state.reachable = true
                return state.eventHandler
            }
            self.logger.info("node reachable over HTTP", metadata: ["node.url": "\(self.configuration.endpoint.redacted)"])
            handler?(.connected)
        }
        try? await gracefulShutdown()
        try await client.shutdown()
    }
}
