import JSON
import JSONRPC

/// Subscription kinds the gateway serves itself instead of sharing an upstream subscription.
public protocol LocalSubscriptions: Sendable {
    func subscribe(kind: String, params: [JSONValue], sink: any SubscriptionSink,
                   reply: @escaping @Sendable (Result<JSONValue, RPCError>) -> Void)
    /// `false` if `client` is not one of this connection's subscriptions here.
    func unsubscribe(client: String, connectionID: UInt64) -> Bool
    func connectionClosed(_ connectionID: UInt64)
}

extension SubscriptionSink {
    /// Writes one `eth_subscription` notification.
    func notify(subscription: String, result: JSONValue) {
        var message = Array(#"{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":""#.utf8)
        message += subscription.utf8
        message += #"","result":"#.utf8
        JSONWriter.write(result, into: &message)
        message += "}}".utf8
        deliver(notification: message, subscription: subscription)
    }
}
