import JSONRPC

/// Why a call to the node did not return a result: either the node answered with its own JSON-RPC error, or the
/// link failed. The distinction that matters to a caller is whether the node may have acted on the call:
/// `notSent` means it never left the gateway (safe to retry, hence -32603, which viem retries); `connectionLost`,
/// `timeout` and a malformed answer mean it was sent and the outcome is unknown.
public struct NodeError: Error, Sendable, Hashable, CustomStringConvertible {
    private enum Kind: Sendable, Hashable {
        case answered(RPCError)
        case notSent
        case shuttingDown
        case connectionLost
        case timeout
        case malformedResponse(String)
        case httpStatus(Int)
    }

    private let kind: Kind
    private init(_ kind: Kind) { self.kind = kind }

    /// The node's own error answer.
    public static func answered(_ error: RPCError) -> NodeError { .init(.answered(error)) }
    /// The link is down (reconnecting): the call was not sent.
    public static let notSent = NodeError(.notSent)
    public static let shuttingDown = NodeError(.shuttingDown)
    /// The connection dropped after the call was written.
    public static let connectionLost = NodeError(.connectionLost)
    /// No answer within the request timeout.
    public static let timeout = NodeError(.timeout)
    public static func malformedResponse(_ detail: String) -> NodeError { .init(.malformedResponse(detail)) }
    /// An HTTP node (or a proxy in front of it) answered with a status other than 200.
    public static func httpStatus(_ status: Int) -> NodeError { .init(.httpStatus(status)) }

    /// The node's own JSON-RPC error, when this is one.
    public var nodeAnswer: RPCError? {
        if case .answered(let error) = kind { return error }
        return nil
    }

    /// Whether the node may have received (and acted on) the call.
    public var mayHaveReachedNode: Bool {
        switch kind {
        case .notSent, .shuttingDown: false
        case .answered, .connectionLost, .timeout, .malformedResponse, .httpStatus: true
        }
    }

    /// What a client of a proxied call receives.
    public var rpcError: RPCError {
        switch kind {
        case .answered(let error): error
        case .notSent: .internalError("upstream node unavailable (reconnecting); the request was not sent")
        case .shuttingDown: .internalError("gateway is shutting down; the request was not sent")
        case .connectionLost:
            .server("upstream node connection lost before it answered; the request may or may not have been processed")
        case .timeout: RPCError(code: -32002, message: "request timed out (upstream node did not answer)")
        case .malformedResponse(let detail): .server("upstream node sent a malformed response: \(detail)")
        case .httpStatus(let status): .server("node answered HTTP \(status)")
        }
    }

    /// Short, bounded, safe for a metric label.
    public var label: String {
        switch kind {
        case .answered: "answered"
        case .notSent: "not_sent"
        case .shuttingDown: "shutting_down"
        case .connectionLost: "connection_lost"
        case .timeout: "timeout"
        case .malformedResponse: "malformed_response"
        case .httpStatus: "http_status"
        }
    }

    public var description: String { rpcError.description }
}
