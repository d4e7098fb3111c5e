/// Limits of the client-facing server. Defaults are geth's where geth has one.
public struct ServerLimits: Sendable, Hashable {
    /// Largest WebSocket message (after reassembly of fragments); larger → close 1009. geth: 32 MiB.
    public var maximumMessageBytes = 32 * 1024 * 1024
    /// Largest HTTP request body; larger → 413. geth: 5 MiB.
    public var maximumHTTPBodyBytes = 5 * 1024 * 1024
    /// Simultaneous client connections; more are refused (HTTP 503 / connection closed).
    public var maximumConnections = 10_000
    /// Requests (or batches) a WebSocket connection may have in flight before the server stops reading from it.
    public var maximumInFlightPerConnection = 64
    /// Bytes written to a connection but not yet taken by its client; beyond this the client is disconnected
    /// (close 1008) instead of letting memory grow.
    public var maximumOutboundBytes = 16 * 1024 * 1024
    /// Idle time after which the server pings (geth: 30 s); a client silent for another interval is disconnected.
    public var pingIntervalSeconds = 30
    /// Time a client gets to take a response before the connection is considered dead (geth's write deadline).
    public var writeTimeoutSeconds = 10

    public init() {}
}
