import JSON
import JSONRPC
import NIOConcurrencyHelpers
import Node

/// Routes decoded JSON-RPC messages: local handlers first, closed namespaces refused, the rest proxied to the node
/// unchanged (params and results as parsed JSON values, numbers never re-encoded). Batches keep their order and
/// geth's 25 MB response limit.
public final class RPCDispatcher: Sendable {
    /// Namespaces a node may expose that must never be reachable through a signing gateway (key management, node
    /// control, tracing). geth answers such calls as unknown methods, and so do we.
    public static let closedNamespaces: [String] = ["admin_", "debug_", "miner_", "personal_", "engine_", "clique_"]
    /// Exceptions to the closed namespaces: signing methods the gateway itself answers.
    private static let openInClosedNamespaces: Set<String> = ["personal_sign"]

    private let node: any NodeClient
    private let handlers: [String: MethodHandler]
    private let methodSets: [any LocalMethods]
    private let limits: RPCLimits
    private let policy: any AccessPolicy
    /// `nil` until metrics land: the per-request path then pays nothing for it.
    private let observer: (any RequestObserver)?
    /// Where signing decisions are recorded before they are answered; `nil`: no audit log configured.
    private let audit: AuditTrail?

    public init(
        node: any NodeClient, methods: [any LocalMethods], limits: RPCLimits = RPCLimits(),
        policy: any AccessPolicy = AllowEveryone(), observer: (any RequestObserver)? = nil,
        audit: AuditTrail? = nil
    ) {
        self.node = node
        self.audit = audit
        self.limits = limits
        self.policy = policy
        self.observer = observer
        var handlers: [String: MethodHandler] = [:]
        for set in methods { handlers.merge(set.handlers) { first, _ in first } }
        self.handlers = handlers
        self.methodSets = methods
    }

    /// Tells every method set that a connection is gone (its subscriptions end with it).
    public func connectionClosed(_ connectionID: UInt64) {
        for set in methodSets { set.connectionClosed(connectionID) }
    }

    /// Handles one message; `completion` receives the bytes to send back (`nil`: nothing, e.g. only notifications).
    public func handle(
        _ message: RPCMessage, session: SessionContext, completion: @escaping @Sendable ([UInt8]?) -> Void
    ) {
        switch message {
        case .single(.invalid(let response)):
            completion(response.bytes)
        case .single(.request(let request)):
            dispatch(request, session: session) { response in completion(response?.bytes) }
        case .batch(let items):
            handleBatch(items, session: session, completion: completion)
        }
    }

    /// One request; `reply` gets the response (`nil` for a notification). The policy decides first, in this one
    /// place, before any method runs; the observer hears every answer.
    public func dispatch(
        _ request: RPCRequest, session: SessionContext, reply: @escaping @Sendable (RPCResponse?) -> Void
    ) {
        let id = request.id
        let observer = self.observer
        let method = request.method
        let answer: @Sendable (Result<JSONValue, RPCError>) -> Void = { outcome in
            switch outcome {
            case .success(let result):
                observer?.answered(method: method, error: nil)
                reply(id.map { RPCResponse(id: $0, result: result) })
            case .failure(let error):
                observer?.answered(method: method, error: error)
                reply(id.map { RPCResponse(id: $0, error: error) })
            }
        }
        // A signing decision is on disk in the audit log before the caller hears it.
        let respond: @Sendable (Result<JSONValue, RPCError>) -> Void
        if let audit, AuditTrail.audits(method) {
            let identity = session.identity
            respond = { outcome in audit.record(request, identity: identity, outcome: outcome) { answer(outcome) } }
        } else {
            respond = answer
        }
        if let denial = policy.check(request, identity: session.identity) {
            respond(.failure(denial))
        } else if let handler = handlers[request.method] {
            handler(request, session, respond)
        } else if Self.isClosed(request.method) {
            respond(.failure(.methodNotFound(request.method)))
        } else {
            node.call(method: request.method, params: request.params ?? .array([])) { respond($0.mapError(\.rpcError)) }
        }
    }

    static func isClosed(_ method: String) -> Bool {
        !openInClosedNamespaces.contains(method) && closedNamespaces.contains { method.hasPrefix($0) }
    }

    private func handleBatch(
        _ items: [RPCItem], session: SessionContext, completion: @escaping @Sendable ([UInt8]?) -> Void
    ) {
        let collector = BatchCollector(count: items.count, limits: limits, completion: completion)
        for (index, item) in items.enumerated() {
            switch item {
            case .invalid(let response): collector.set(index, response)
            case .request(let request):
                dispatch(request, session: session) { collector.set(index, $0) }
            }
        }
    }
}

/// Gathers a batch's responses in request order and writes them once all are in.
private final class BatchCollector: Sendable {
    private struct State {
        var responses: [RPCResponse?]
        var remaining: Int
    }

    private let state: NIOLockedValueBox<State>
    private let limits: RPCLimits
    private let completion: @Sendable ([UInt8]?) -> Void

    init(count: Int, limits: RPCLimits, completion: @escaping @Sendable ([UInt8]?) -> Void) {
        state = NIOLockedValueBox(State(responses: Array(repeating: nil, count: count), remaining: count))
        self.limits = limits
        self.completion = completion
    }

    func set(_ index: Int, _ response: RPCResponse?) {
        let done: [RPCResponse?]? = state.withLockedValue { state in
            state.responses[index] = response
            state.remaining -= 1
            return state.remaining == 0 ? state.responses : nil
        }
        guard let done else { return }
        let responses = done.compactMap { $0 }
        guard !responses.isEmpty else { return completion(nil) }
        // geth: once the batch's response exceeds the limit, every later item gets -32003 instead of its result.
        var output: [UInt8] = [UInt8(ascii: "[")]
        var exceeded = false
        for (position, response) in responses.enumerated() {
            if position > 0 { output.append(UInt8(ascii: ",")) }
            if exceeded {
                RPCResponse(id: response.id, error: .responseTooLarge).write(into: &output)
            } else {
                response.write(into: &output)
                exceeded = output.count > limits.maximumBatchResponseBytes
            }
        }
        output.append(UInt8(ascii: "]"))
        completion(output)
    }
}
