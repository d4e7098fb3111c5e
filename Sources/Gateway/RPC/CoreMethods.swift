import JSON
import JSONRPC
import NIOConcurrencyHelpers
import Node

/// `eth_subscribe` / `eth_unsubscribe`, multiplexed through the `SubscriptionHub`.
public struct SubscriptionMethods: LocalMethods {
    let hub: SubscriptionHub
    /// Kinds served by the gateway itself (e.g. `transactionReceipts`), not shared upstream.
    let local: [String: any LocalSubscriptions]

    public init(hub: SubscriptionHub, local: [String: any LocalSubscriptions] = [:]) {
        self.hub = hub
        self.local = local
    }

    public func connectionClosed(_ connectionID: UInt64) {
        hub.connectionClosed(connectionID)
        for provider in local.values { provider.connectionClosed(connectionID) }
    }

    public var handlers: [String: MethodHandler] {
        [
            "eth_subscribe": { [hub, local] request, session, reply in
                guard let sink = session.sink else { return reply(.failure(.notificationsNotSupported)) }
                let params: [JSONValue]
                do throws(RPCError) { params = try request.positionalParams() } catch { return reply(.failure(error)) }
                guard let kind = params.first?.stringValue else {
                    return reply(.failure(.invalidParams("first parameter must be the subscription name")))
                }
                if let provider = local[kind] {
                    provider.subscribe(kind: kind, params: Array(params.dropFirst()), sink: sink, reply: reply)
                } else {
                    hub.subscribe(kind: kind, params: Array(params.dropFirst()), sink: sink, reply: reply)
                }
            },
            "eth_unsubscribe": { [hub, local] request, session, reply in
                guard session.sink != nil else { return reply(.failure(.notificationsNotSupported)) }
                let params: [JSONValue]
                do throws(RPCError) { params = try request.positionalParams() } catch { return reply(.failure(error)) }
                guard params.count == 1, let id = params[0].stringValue else {
                    return reply(.failure(.invalidParams("expected one parameter: the subscription id")))
                }
                if local.values.contains(where: { $0.unsubscribe(client: id, connectionID: session.connectionID) })
                    || hub.unsubscribe(client: id, connectionID: session.connectionID)
                {
                    reply(.success(.bool(true)))
                } else {
                    reply(.failure(.subscriptionNotFound))
                }
            },
        ]
    }
}

/// `eth_chainId` answered from memory after the node's first answer: it is the most frequent call of every client
/// library and never changes while the node connection lasts. Forgotten on every reconnection.
public final class ChainIDCache: LocalMethods, Sendable {
    private let node: any NodeClient
    private let cached = NIOLockedValueBox<JSONValue?>(nil)

    public init(node: any NodeClient) { self.node = node }

    public func handle(_ event: NodeEvent) {
        switch event {
        case .connected:
            cached.withLockedValue { $0 = nil }
            // Asked at once, so that /status names the chain before any client has asked.
            node.call(method: "eth_chainId", params: .array([])) { [cached] result in
                if case .success(let value) = result { cached.withLockedValue { $0 = $0 ?? value } }
            }
        case .disconnected: cached.withLockedValue { $0 = nil }
        case .notification, .polledHead: break
        }
    }

    public var value: JSONValue? { cached.withLockedValue { $0 } }

    public var handlers: [String: MethodHandler] {
        [
            "eth_chainId": { [self] _, _, reply in
                if let value = cached.withLockedValue({ $0 }) { return reply(.success(value)) }
                node.call(method: "eth_chainId", params: .array([])) { [self] result in
                    if case .success(let value) = result { cached.withLockedValue { $0 = value } }
                    reply(result.mapError(\.rpcError))
                }
            }
        ]
    }
}
