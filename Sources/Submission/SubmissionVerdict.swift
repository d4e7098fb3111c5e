import JSON
import JSONRPC
import Node

/// What a node's answer to `eth_sendRawTransaction` means for the nonce, classified once, here. Clients of
/// different nodes word the same verdict differently; the table below keeps the wording of geth, Nethermind, Besu,
/// Erigon and reth (matched case-insensitively as prefixes or fragments of the message).
public enum SubmissionVerdict: Sendable, Equatable {
    /// The node has the transaction (now, or already: `already known`).
    case accepted
    /// The nonce is used by a mined transaction. It may be ours (an earlier attempt whose answer was lost): only a
    /// lookup by hash tells.
    case nonceUsed(RPCError)
    /// Another transaction occupies the nonce in the pool (`replacement transaction underpriced`): resync from
    /// the node, never renumber over it.
    case nonceOccupied(RPCError)
    /// The node has not seen the nonces before this one (it lost its pool, or never got an earlier one): the
    /// earlier transactions are sent again, then this one.
    case nonceGap(RPCError)
    /// Try the same bytes again later: the pool is full, the node timed out, or the link failed. `mayHaveReachedNode`
    /// says whether the node might have the transaction now.
    case retryLater(RPCError, mayHaveReachedNode: Bool)
    /// Refused for good (insufficient funds, intrinsic gas, fee below the base fee, exceeds the block gas limit, …):
    /// nothing of it is in the pool and its nonce is free.
    case rejected(RPCError)

    /// Classifies the outcome of one `eth_sendRawTransaction`.
    public init(_ outcome: Result<JSONValue, NodeError>) {
        switch outcome {
        case .success:
            self = .accepted
        case .failure(let failure):
            guard let answer = failure.nodeAnswer else {
                self = .retryLater(failure.rpcError, mayHaveReachedNode: failure.mayHaveReachedNode)
                return
            }
            self = Self.classify(answer)
        }
    }

    static func classify(_ answer: RPCError) -> SubmissionVerdict {
        let message = answer.message.lowercased()
        func any(_ fragments: [String]) -> Bool { fragments.contains { message.contains($0) } }
        // A node's own -32603 is its internal failure, not the gateway's "nothing was sent": clients retry -32603,
        // so it reaches them as -32000.
        let clientError = answer.code == -32603 ? RPCError.server(answer.message, data: answer.data) : answer
        if any(Wording.alreadyKnown) { return .accepted }
        if any(Wording.nonceTooLow) { return .nonceUsed(clientError) }
        if any(Wording.replacementUnderpriced) { return .nonceOccupied(clientError) }
        if any(Wording.nonceTooHigh) { return .nonceGap(clientError) }
        if answer.code == -32002 || answer.code == -32005 || answer.code == -32603 || any(Wording.retryable) {
            return .retryLater(clientError, mayHaveReachedNode: true)
        }
        return .rejected(clientError)
    }

    /// Fragments of the messages each verdict is known by (lowercased).
    enum Wording {
        static let alreadyKnown = [
            "already known",  // geth, erigon, reth
            "known transaction",  // besu ("Known transaction"), older geth
            "transaction already imported", "alreadyknown",  // reth, nethermind
            "transaction_already_known",  // besu enum
        ]
        static let nonceTooLow = [
            "nonce too low",  // geth, erigon, reth, besu ("Nonce too low")
            "oldnonce",  // nethermind
            "nonce_too_low",  // besu enum
        ]
        static let replacementUnderpriced = [
            "replacement transaction underpriced",  // geth, erigon, reth, besu
            "replacementnotallowed", "feetoolowtocompete",  // nethermind
            "replacement_underpriced",  // besu enum
        ]
        static let nonceTooHigh = [
            "nonce too high",  // geth (with gap refusal), reth
            "nonce gap", "noncegap",  // reth, nethermind
            "nonce too distant", "nonce_too_far_in_future",  // besu
        ]
        static let retryable = [
            "txpool is full", "transaction pool is full", "txpoolfull", "tx_pool_full",  // pool full
            "request timed out", "timeout",
            "too many requests", "rate limit",
        ]
    }
}
