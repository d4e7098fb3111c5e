import JSON

/// A JSON-RPC error object. The factories carry go-ethereum's codes and messages, which clients match by code and
/// by regular expression (ethers, viem, web3.py): keep the strings exact.
public struct RPCError: Error, Sendable, Hashable, CustomStringConvertible {
    public let code: Int
    public let message: String
    public let data: JSONValue?

    public init(code: Int, message: String, data: JSONValue? = nil) {
        self.code = code
        self.message = message
        self.data = data
    }

    public var description: String { "\(code): \(message)" }

    public var json: JSONValue {
        var object = JSONObject([("code", .number(code)), ("message", .string(message))])
        if let data { object["data"] = data }
        return .object(object)
    }

    // MARK: JSON-RPC 2.0 (EIP-1474)

    public static func parseError(_ detail: String) -> RPCError { .init(code: -32700, message: detail) }
    public static func invalidRequest(_ detail: String = "invalid request") -> RPCError {
        .init(code: -32600, message: detail)
    }
    public static let emptyBatch = RPCError.invalidRequest("empty batch")
    public static let batchTooLarge = RPCError.invalidRequest("batch too large")
    public static func methodNotFound(_ method: String) -> RPCError {
        .init(code: -32601, message: "the method \(method) does not exist/is not available")
    }
    public static func invalidParams(_ detail: String) -> RPCError { .init(code: -32602, message: detail) }
    /// Means "nothing was done": viem retries -32603, so a send must only answer it when nothing was broadcast.
    public static func internalError(_ detail: String) -> RPCError { .init(code: -32603, message: detail) }

    // MARK: geth server errors

    public static func server(_ message: String, data: JSONValue? = nil) -> RPCError {
        .init(code: -32000, message: message, data: data)
    }
    public static let notificationsNotSupported = RPCError(code: -32601, message: "notifications not supported")
    public static func unknownSubscription(_ kind: String) -> RPCError {
        .init(code: -32601, message: "no \"\(kind)\" subscription in eth namespace")
    }
    public static let subscriptionNotFound = RPCError.server("subscription not found")
    public static let timeout = RPCError(code: -32002, message: "request timed out")
    public static let responseTooLarge = RPCError(code: -32003, message: "response too large")
    public static func limitExceeded(_ detail: String) -> RPCError { .init(code: -32005, message: detail) }

    // MARK: EIP-1193 provider errors

    /// Used for policy denials: the request was understood and refused.
    public static func userRejected(_ detail: String) -> RPCError { .init(code: 4001, message: detail) }
    /// Unknown `from`, or an account or method this caller may not use.
    public static func unauthorized(_ detail: String) -> RPCError { .init(code: 4100, message: detail) }
    public static func unsupportedMethod(_ detail: String) -> RPCError { .init(code: 4200, message: detail) }
}
