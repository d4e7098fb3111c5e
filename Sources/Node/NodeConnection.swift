import ServiceLifecycle

/// A node link the gateway runs as a `Service`: the WebSocket client (subscriptions, one multiplexed connection) or
/// the HTTP client (for nodes that only speak HTTP; no subscriptions).
public protocol NodeConnection: NodeClient, Service {
    /// Whether calls can be sent now.
    var isConnected: Bool { get }
}
