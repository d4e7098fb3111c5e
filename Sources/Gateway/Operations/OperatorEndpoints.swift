import JSON

/// The HTTP endpoints beside JSON-RPC, for operators and their monitoring: what each answers, supplied by the
/// application that knows the node, the wallet and the metrics.
public struct OperatorEndpoints: Sendable {
    /// `GET /health` (always 200 while the process serves) and `GET /ready` (200 only when `ready`).
    public var health: @Sendable () -> (ready: Bool, detail: JSONValue)
    /// `GET /status`: what any caller may see; `admin` adds the backends and their accounts.
    public var status: @Sendable (_ admin: Bool) -> JSONValue
    /// `GET /metrics`, the Prometheus text format (admin role where access control is on); `nil`: not served.
    public var metrics: (@Sendable () -> [UInt8])?

    public init(
        health: @escaping @Sendable () -> (ready: Bool, detail: JSONValue),
        status: @escaping @Sendable (_ admin: Bool) -> JSONValue = { _ in [:] },
        metrics: (@Sendable () -> [UInt8])? = nil
    ) {
        self.health = health
        self.status = status
        self.metrics = metrics
    }
}
