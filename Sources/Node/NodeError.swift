import JSONRPC

/// Failures of the upstream link, as the JSON-RPC errors a client receives. The distinction that matters to a
/// client is whether the node may have acted on the call: `unavailable` means it was never sent (safe to retry,
/// hence -32603, which viem retries), `connectionLost` means it was sent and the answer is unknown.
public enum NodeError {
    public static let unavailable = RPCError.internalError("upstream node unavailable (reconnecting); the request was not sent")
    public static let connectionLost = RPCError.server(
        "upstream node connection lost before it answered; the request may or may not have been processed")
    public static let timeout = RPCError(code: -32002, message: "request timed out (upstream node did not answer)")
    public static let shuttingDown = RPCError.internalError("gateway is shutting down; the request was not sent")
    public static func malformedResponse(_ detail: String) -> RPCError {
        .server("upstream node sent a malformed response: \(detail)")
    }
}

extension NodeError {
    /// Whether `error` is the link failing (nothing known about what the node did) rather than the node's own answer.
    public static func isTransportFailure(_ error: RPCError) -> Bool {
        error == connectionLost || error == timeout || error == unavailable || error == shuttingDown
            || error.message.hasPrefix("upstream node sent a malformed response") || error.message.hasPrefix("node answered HTTP")
    }
}
