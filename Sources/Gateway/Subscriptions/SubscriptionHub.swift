import JSON
import JSONRPC
import Logging
import NIOConcurrencyHelpers
import Node
import ServiceLifecycle

/// A client connection as the hub sees it: somewhere to deliver notifications.
public protocol SubscriptionSink: AnyObject, Sendable {
    var connectionID: UInt64 { get }
    /// Delivers one complete `eth_subscription` message. Called from any thread; the sink orders and writes it.
    func deliver(notification: [UInt8], subscription: String)
    /// Called just before the reply that announces `subscription` is handed to the connection.
    func willAnnounce(subscription: String)
}

extension SubscriptionSink {
    public func willAnnounce(subscription: String) {}
}

/// Owns the `SubscriptionMultiplexer` and performs its actions: talks to the node, answers clients, fans out.
/// A `Service` so that resubscriptions the node refused are retried (with backoff) by children of its task group.
public final class SubscriptionHub: Service, Sendable {
    /// geth's subscription kinds in the eth namespace (v1.16.5 added `transactionReceipts`).
    public static let kinds: Set<String> = [
        "newHeads", "logs", "newPendingTransactions", "syncing", "transactionReceipts",
    ]

    private typealias Reply = @Sendable (Result<JSONValue, RPCError>) -> Void

    private struct State {
        var machine = SubscriptionMultiplexer<UInt64>()
        var sinks: [UInt64: any SubscriptionSink] = [:]
        var pendingReplies: [String: (connection: UInt64, reply: Reply)] = [:]
    }

    let node: any NodeClient
    private let logger: Logger
    private let state = NIOLockedValueBox(State())
    private let retries: AsyncStream<(SubscriptionKey, Int)>
    private let retryInput: AsyncStream<(SubscriptionKey, Int)>.Continuation
    private let backoff = Backoff(initial: .milliseconds(200), maximum: .seconds(10))

    public init(node: any NodeClient, logger: Logger) {
        self.node = node
        self.logger = logger
        (retries, retryInput) = AsyncStream.makeStream(of: (SubscriptionKey, Int).self)
    }

    public func run() async throws {
        await withDiscardingTaskGroup { group in
            await withGracefulShutdownHandler {
                for await (key, failures) in retries {
                    group.addTask {
                        guard (try? await Task.sleep(for: self.backoff.delay(afterFailures: failures - 1))) != nil
                        else {
                            return
                        }
                        self.perform(self.state.withLockedValue { $0.machine.retry(key: key) })
                    }
                }
            } onGracefulShutdown: {
                self.retryInput.finish()
            }
            group.cancelAll()
        }
    }

    // MARK: Client side

    /// `eth_subscribe(kind, params…)` from a connection. `reply` gets the client's new id once upstream confirmed.
    public func subscribe(
        kind: String, params: [JSONValue], sink: any SubscriptionSink,
        reply: @escaping @Sendable (Result<JSONValue, RPCError>) -> Void
    ) {
        guard Self.kinds.contains(kind) else {
            reply(.failure(.unknownSubscription(kind)))
            return
        }
        let client = Self.newClientID()
        let key = SubscriptionKey(kind: kind, params: params)
        let actions = state.withLockedValue { state in
            state.sinks[sink.connectionID] = sink
            state.pendingReplies[client] = (sink.connectionID, reply)
            return state.machine.subscribe(
                key: key, params: [.string(kind)] + params, client: client, connection: sink.connectionID)
        }
        perform(actions)
    }

    /// `eth_unsubscribe(id)`: `false` when the id is not one of this connection's subscriptions.
    public func unsubscribe(client: String, connectionID: UInt64) -> Bool {
        let actions = state.withLockedValue { $0.machine.unsubscribe(client: client, connection: connectionID) }
        guard let actions else { return false }
        perform(actions)
        return true
    }

    public func connectionClosed(_ connectionID: UInt64) {
        let actions = state.withLockedValue { state in
            state.sinks.removeValue(forKey: connectionID)
            state.pendingReplies = state.pendingReplies.filter { $0.value.connection != connectionID }
            return state.machine.connectionClosed(connectionID)
        }
        perform(actions)
    }

    public var counts: (upstream: Int, clients: Int) {
        state.withLockedValue { ($0.machine.upstreamSubscriptionCount, $0.machine.clientSubscriptionCount) }
    }

    // MARK: Node side (called in the node's message order)

    public func handle(_ event: NodeEvent) {
        switch event {
        case .notification(let subscription, let result):
            let recipients = state.withLockedValue { state in
                state.machine.recipients(ofUpstream: subscription).compactMap { recipient in
                    state.sinks[recipient.connection].map { (sink: $0, client: recipient.client) }
                }
            }
            guard !recipients.isEmpty else { return }
            let resultBytes = JSONWriter.bytes(result)
            for recipient in recipients {
                let message = RPCNotification.subscriptionBytes(id: recipient.client, result: resultBytes)
                recipient.sink.deliver(notification: message, subscription: recipient.client)
            }
        case .connected:
            perform(state.withLockedValue { $0.machine.nodeConnected() })
        case .disconnected:
            perform(state.withLockedValue { $0.machine.nodeDisconnected() })
        case .polledHead:
            break
        }
    }

    // MARK: Actions

    private func perform(_ actions: [SubscriptionMultiplexer<UInt64>.Action]) {
        for action in actions {
            switch action {
            case .subscribeUpstream(let key, let params, let attempt):
                node.call(method: "eth_subscribe", params: .array(params)) { [self] result in
                    let next = state.withLockedValue { state in
                        switch result {
                        case .success(.string(let upstreamID)):
                            return state.machine.upstreamSubscribed(key: key, attempt: attempt, upstreamID: upstreamID)
                        case .success(let other):
                            return state.machine.upstreamSubscribeFailed(
                                key: key, attempt: attempt,
                                error: .server("node answered eth_subscribe with \(other.typeName), not an id"))
                        case .failure(let error):
                            return state.machine.upstreamSubscribeFailed(
                                key: key, attempt: attempt, error: error.rpcError)
                        }
                    }
                    perform(next)
                }
            case .unsubscribeUpstream(let key, let upstreamID, let attempt):
                node.call(method: "eth_unsubscribe", params: [.string(upstreamID)]) { [self] _ in
                    perform(state.withLockedValue { $0.machine.upstreamUnsubscribed(key: key, attempt: attempt) })
                }
            case .confirm(let connection, let client):
                let (pending, sink) = state.withLockedValue {
                    ($0.pendingReplies.removeValue(forKey: client), $0.sinks[connection])
                }
                sink?.willAnnounce(subscription: client)
                pending?.reply(.success(.string(client)))
            case .reject(_, let client, let error):
                state.withLockedValue { $0.pendingReplies.removeValue(forKey: client) }?.reply(.failure(error))
            case .retryLater(let key, let failures):
                logger.warning(
                    "node refused a subscription that clients still hold; retrying",
                    metadata: ["subscription.key": "\(key)", "attempt": "\(failures)"])
                retryInput.yield((key, failures))
            }
        }
    }

    /// geth's form: `0x` + 16 random bytes in hex.
    static func newClientID() -> String {
        var generator = SystemRandomNumberGenerator()
        let digits = Array("0123456789abcdef".utf8)
        var id: [UInt8] = [UInt8(ascii: "0"), UInt8(ascii: "x")]
        for _ in 0..<2 {
            var word = generator.next()
            for _ in 0..<16 {
                id.append(digits[Int(word & 0xF)])
                word >>= 4
            }
        }
        return String(decoding: id, as: UTF8.self)
    }
}
