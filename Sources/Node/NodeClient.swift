import JSON
import JSONRPC

/// What the rest of the gateway needs from its upstream node. The WebSocket client is the real one; tests can drive
/// an in-memory one.
public protocol NodeClient: Sendable {
    /// Sends one call upstream. `completion` runs exactly once. Responses and `events` are delivered in the order the
    /// node sent them, so a subscription's confirmation always runs before its first notification is delivered.
    func call(method: String, params: JSONValue, completion: @escaping @Sendable (Result<JSONValue, NodeError>) -> Void)

    /// Installs the single receiver of connection changes and subscription notifications (set once, before `run`).
    func setEventHandler(_ handler: @escaping @Sendable (NodeEvent) -> Void)
}

public enum NodeEvent: Sendable {
    /// A (re)connection is established; upstream subscriptions made on an earlier connection are gone.
    case connected
    /// The connection dropped; calls in flight failed with `NodeError.connectionLost`.
    case disconnected
    /// An `eth_subscription` notification.
    case notification(subscription: String, result: JSONValue)
    /// A node that cannot push heads (HTTP) was polled and has a new latest block (`eth_getBlockByNumber` form).
    case polledHead(JSONValue)
}

extension NodeClient {
    public func call(method: String, params: JSONValue = .array([])) async -> Result<JSONValue, NodeError> {
        await withCheckedContinuation { continuation in
            call(method: method, params: params) { continuation.resume(returning: $0) }
        }
    }
}

extension NodeClient {
    /// A call whose failure is thrown as the error a client would receive.
    public func call(_ method: String, _ params: [JSONValue]) async throws(RPCError) -> JSONValue {
        try await call(method: method, params: .array(params)).mapError(\.rpcError).get()
    }
}
