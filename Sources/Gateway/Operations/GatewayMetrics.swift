import Ethereum
import JSONRPC
import Metrics
import Prometheus
import Synchronization

/// The gateway's metrics, recorded through swift-metrics into this gateway's own Prometheus registry (no global
/// bootstrap, so several gateways in one process, as in the tests, keep theirs apart) and served at `GET /metrics`.
///
/// Counters are recorded as things happen; levels (connections, queue depths, the node link) are read when scraped.
public final class GatewayMetrics: RequestObserver, Sendable {
    /// Methods counted under their own name; anything else a client sends is `other`, so that arbitrary method
    /// names cannot grow the series without bound.
    public static let namedMethods = Set<String>([
        "eth_chainId", "eth_blockNumber", "eth_getBalance", "eth_call", "eth_estimateGas", "eth_gasPrice",
        "eth_feeHistory", "eth_maxPriorityFeePerGas", "eth_getTransactionCount", "eth_getTransactionReceipt",
        "eth_getTransactionByHash", "eth_getBlockByNumber", "eth_getBlockByHash", "eth_getLogs", "eth_getCode",
        "eth_sendRawTransaction", "eth_subscribe", "eth_unsubscribe", "net_version", "web3_clientVersion",
    ]).union(RolePolicy.signingMethods.keys).union(RolePolicy.byHashMethods).union(RolePolicy.adminMethods)
        .union(["eth_accounts", "eth_requestAccounts"])

    public let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    private struct RequestKey: Hashable {
        let method: String
        let code: Int?
    }

    private let requests = Mutex<[RequestKey: Metrics.Counter]>([:])
    private let signatures = Mutex<[String: (latency: Metrics.Timer, failures: Metrics.Counter)]>([:])
    private let submitted: Metrics.Counter
    private let mined: Metrics.Counter
    private let replaced: Metrics.Counter
    private let reconnects: Metrics.Counter
    private let slowConsumers: Metrics.Counter
    private let denials = Mutex<[String: Metrics.Counter]>([:])
    private let levels = Mutex(Levels())
    /// Lanes reported non-empty at the last scrape: set back to 0 once their queue is empty.
    private let reportedLanes = Mutex<Set<Address>>([])

    /// What is read at scrape time.
    public struct Levels: Sendable {
        public var connections: @Sendable () -> Int = { 0 }
        public var queueDepths: @Sendable () -> [Address: Int] = { [:] }
        public var nodeConnected: @Sendable () -> Bool = { false }

        public init(
            connections: @escaping @Sendable () -> Int = { 0 },
            queueDepths: @escaping @Sendable () -> [Address: Int] = { [:] },
            nodeConnected: @escaping @Sendable () -> Bool = { false }
        ) {
            self.connections = connections
            self.queueDepths = queueDepths
            self.nodeConnected = nodeConnected
        }
    }

    public init() {
        factory = PrometheusMetricsFactory(registry: registry)
        submitted = Metrics.Counter(label: "signer_gateway_transactions_submitted_total", factory: factory)
        mined = Metrics.Counter(label: "signer_gateway_transactions_mined_total", factory: factory)
        replaced = Metrics.Counter(label: "signer_gateway_transactions_replaced_total", factory: factory)
        reconnects = Metrics.Counter(label: "signer_gateway_node_reconnects_total", factory: factory)
        slowConsumers = Metrics.Counter(label: "signer_gateway_slow_consumers_disconnected_total", factory: factory)
    }

    /// Where the levels come from (the server and the pipeline exist only after the metrics do).
    public func readLevels(from levels: Levels) { self.levels.withLock { $0 = levels } }

    // MARK: Recording

    public func answered(method: String, error: RPCError?) {
        // Per request: a set lookup and a dictionary lookup, no new string.
        let key = RequestKey(method: Self.namedMethods.contains(method) ? method : "other", code: error?.code)
        let counter = requests.withLock { counters in
            if let counter = counters[key] { return counter }
            let counter = Metrics.Counter(
                label: "signer_gateway_requests_total",
                dimensions: [("method", key.method), ("code", key.code.map(String.init) ?? "ok")], factory: factory)
            counters[key] = counter
            return counter
        }
        counter.increment()
        if let error, AuditTrail.denialCodes.contains(error.code) {
            let rule = error.data?["rule"]?.stringValue ?? Self.accessRule(error.code)
            denial(rule).increment()
        }
    }

    public func signature(backend: String, duration: Duration, failed: Bool) {
        let metrics = signatures.withLock { all in
            if let found = all[backend] { return found }
            let made = (
                latency: Metrics.Timer(
                    label: "signer_gateway_signature_seconds", dimensions: [("backend", backend)], factory: factory),
                failures: Metrics.Counter(
                    label: "signer_gateway_signature_failures_total", dimensions: [("backend", backend)],
                    factory: factory)
            )
            all[backend] = made
            return made
        }
        metrics.latency.record(duration: duration)
        if failed { metrics.failures.increment() }
    }

    public func transactionSubmitted() { submitted.increment() }
    public func transactionMined() { mined.increment() }
    public func transactionReplaced() { replaced.increment() }
    public func nodeReconnected() { reconnects.increment() }
    public func slowConsumerDisconnected() { slowConsumers.increment() }

    private func denial(_ rule: String) -> Metrics.Counter {
        denials.withLock { counters in
            if let counter = counters[rule] { return counter }
            let counter = Metrics.Counter(
                label: "signer_gateway_denials_total", dimensions: [("rule", rule)], factory: factory)
            counters[rule] = counter
            return counter
        }
    }

    private static func accessRule(_ code: Int) -> String {
        switch code {
        case 4100: "unauthorized"
        case 4200: "method_not_allowed"
        case -32005: "rate_limit"
        default: "policy"
        }
    }

    // MARK: Exposition

    /// The Prometheus text format (version 0.0.4), levels read now.
    public func exposition() -> [UInt8] {
        let levels = self.levels.withLock { $0 }
        Metrics.Gauge(label: "signer_gateway_connections", factory: factory).record(levels.connections())
        Metrics.Gauge(label: "signer_gateway_node_connected", factory: factory).record(levels.nodeConnected() ? 1 : 0)
        let depths = levels.queueDepths()
        let emptied = reportedLanes.withLock { reported in
            defer { reported = Set(depths.keys) }
            return reported.subtracting(depths.keys)
        }
        for (address, depth) in depths.map({ ($0.key, $0.value) }) + emptied.map({ ($0, 0) }) {
            Metrics.Gauge(
                label: "signer_gateway_lane_queue_depth", dimensions: [("address", address.lowercaseHex)],
                factory: factory
            ).record(depth)
        }
        return registry.emitToBuffer()
    }
}
