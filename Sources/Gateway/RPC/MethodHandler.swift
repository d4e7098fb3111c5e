import JSON
import JSONRPC

/// Answers one method locally. `reply` runs exactly once, on any thread, possibly before the handler returns.
public typealias MethodHandler =
    @Sendable (
        _ request: RPCRequest, _ session: SessionContext,
        _ reply: @escaping @Sendable (Result<JSONValue, RPCError>) -> Void
    ) -> Void

/// A set of methods the gateway answers itself (subscriptions, chain id, the wallet). Anything not claimed by a
/// set is proxied to the node unless its namespace is closed.
public protocol LocalMethods: Sendable {
    var handlers: [String: MethodHandler] { get }
    /// A client connection closed: drop what belonged to it.
    func connectionClosed(_ connectionID: UInt64)
}

extension LocalMethods {
    public func connectionClosed(_ connectionID: UInt64) {}
}
