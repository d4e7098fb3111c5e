import Ethereum
import JSON
import JSONRPC
import Node
import Submission
import Synchronization

/// A `NodeClient` whose every answer a test chooses: by default a small, consistent node (chain id 1337, a pending
/// count per address that grows with each accepted raw transaction, fee data, gas estimates), and `script` to answer
/// any call differently — a refusal, a lost connection, a timeout — before falling back to the default.
public final class ScriptedNode: NodeClient, Sendable {
    public typealias Script = @Sendable (_ method: String, _ params: JSONValue) -> Result<JSONValue, NodeError>?

    private struct State {
        var script: Script?
        var calls: [(method: String, params: JSONValue)] = []
        var pending: [Address: UInt64] = [:]
        var pool: [Bytes32: SignedTransaction] = [:]
        var handler: (@Sendable (NodeEvent) -> Void)?
    }

    private let state = Mutex(State())
    public let chainID: UInt64

    public init(chainID: UInt64 = 1337) { self.chainID = chainID }

    /// Answers calls before the default node does (`nil` from the script: the default answers).
    public func setScript(_ script: Script?) { state.withLock { $0.script = script } }

    /// Answers the first `eth_sendRawTransaction` with `answer` (run once, given its params), the rest by default.
    public func scriptFirstBroadcast(_ answer: @escaping @Sendable (JSONValue) -> Result<JSONValue, NodeError>) {
        let pending = Mutex(true)
        setScript { method, params in
            guard method == "eth_sendRawTransaction", pending.withLock({ $0 }) else { return nil }
            pending.withLock { $0 = false }
            return answer(params)
        }
    }

    /// The node's count of `address` (as if transactions were sent around the gateway).
    public func setPendingCount(_ count: UInt64, for address: Address) {
        state.withLock { $0.pending[address] = count }
    }

    /// Every raw transaction the node accepted, in order.
    public var accepted: [SignedTransaction] {
        state.withLock { state in
            state.calls.filter { $0.method == "eth_sendRawTransaction" }.compactMap { call in
                call.params.arrayValue?.first?.stringValue.flatMap { try? Hex.decode($0) }.flatMap {
                    try? SignedTransaction(raw: $0)
                }
            }.filter { state.pool[$0.hash] != nil }
        }
    }

    public func calls(_ method: String) -> [JSONValue] {
        state.withLock { $0.calls.filter { $0.method == method }.map(\.params) }
    }

    public func setEventHandler(_ handler: @escaping @Sendable (NodeEvent) -> Void) {
        state.withLock { $0.handler = handler }
    }

    public func call(
        method: String, params: JSONValue,
        completion: @escaping @Sendable (Result<JSONValue, NodeError>) -> Void
    ) {
        let script = state.withLock { state -> Script? in
            state.calls.append((method, params))
            return state.script
        }
        if let answer = script?(method, params) {
            if case .success = answer, method == "eth_sendRawTransaction" { accept(params) }
            return completion(answer)
        }
        completion(answerByDefault(method, params))
    }

    private func accept(_ params: JSONValue) {
        guard let raw = params.arrayValue?.first?.stringValue.flatMap({ try? Hex.decode($0) }),
            let signed = try? SignedTransaction(raw: raw), let from = try? signed.sender()
        else { return }
        state.withLock { state in
            state.pool[signed.hash] = signed
            state.pending[from] = max(state.pending[from] ?? 0, signed.transaction.nonce + 1)
        }
    }

    /// What the default node answers (and does): a script can let the node act and then lose its answer.
    public func answerByDefault(_ method: String, _ params: JSONValue) -> Result<JSONValue, NodeError> {
        switch method {
        case "eth_chainId": return .success(.string(Hex.encodeQuantity(chainID)))
        case "eth_estimateGas": return .success("0x5208")
        case "eth_maxPriorityFeePerGas": return .success("0x3b9aca00")
        case "eth_gasPrice": return .success("0x77359400")
        case "eth_feeHistory": return .success(["baseFeePerGas": ["0x3b9aca00", "0x3b9aca00"], "oldestBlock": "0x1"])
        case "eth_getTransactionCount":
            guard let text = params.arrayValue?.first?.stringValue, let address = try? Address(hex: text) else {
                return .failure(.answered(.invalidParams("bad address")))
            }
            return .success(.string(Hex.encodeQuantity(state.withLock { $0.pending[address] ?? 0 })))
        case "eth_sendRawTransaction":
            guard let raw = params.arrayValue?.first?.stringValue.flatMap({ try? Hex.decode($0) }),
                let signed = try? SignedTransaction(raw: raw), let from = try? signed.sender()
            else { return .failure(.answered(.invalidParams("invalid raw transaction"))) }
            let verdict = state.withLock { state -> Result<JSONValue, NodeError> in
                if state.pool[signed.hash] != nil { return .failure(.answered(.server("already known"))) }
                let next = state.pending[from] ?? 0
                // Nothing is mined here: a lower nonce held by a pool transaction is a replacement attempt.
                if let held = state.pool.values.first(where: {
                    $0.transaction.nonce == signed.transaction.nonce && (try? $0.sender()) == from
                }) {
                    guard FeeBump.beats(signed.transaction.fees, held.transaction.fees) else {
                        return .failure(.answered(.server("replacement transaction underpriced")))
                    }
                    state.pool.removeValue(forKey: held.hash)
                    return .success(.string(signed.hash.hex))
                }
                if signed.transaction.nonce < next {
                    return .failure(
                        .answered(.server("nonce too low: next nonce \(next), tx nonce \(signed.transaction.nonce)")))
                }
                if signed.transaction.nonce > next { return .failure(.answered(.server("nonce too high"))) }
                return .success(.string(signed.hash.hex))
            }
            if case .success = verdict { accept(params) }
            return verdict
        case "eth_getTransactionByHash":
            guard let text = params.arrayValue?.first?.stringValue, let hash = try? Bytes32(hex: text) else {
                return .success(.null)
            }
            return .success(state.withLock { $0.pool[hash] } == nil ? .null : ["hash": .string(hash.hex)])
        default:
            return .failure(.answered(.methodNotFound(method)))
        }
    }
}
