import JSON
import JSONRPC

/// Subscription kinds the gateway serves itself instead of sharing an upstream subscription.
public protocol LocalSubscriptions: Sendable {
    func subscribe(
        kind: String, params: [JSONValue], sink: any SubscriptionSink,
        reply: @escaping @Sendable (Result<JSONValue, RPCError>) -> Void)
    /// `false` if `client` is not one of this connection's subscriptions here.
    func unsubscribe(client: String, connectionID: UInt64) -> Bool
    func connectionClosed(_ connectionID: UInt64)
}

extension SubscriptionSink {
    /// Writes one `eth_subscription` notification.
    func notify(subscription: String, result: JSONValue) {
        let message = RPCNotification.subscriptionBytes(id: subscription, result: JSONWriter.bytes(result))
        deliver(notification: message, subscription: subscription)
    }
}
