import JSON

/// One JSON-RPC call. `id == nil` makes it a notification (no response is written).
public struct RPCRequest: Sendable, Hashable {
    public var id: RPCID?
    public var method: String
    /// As sent (usually an array); `nil` when absent.
    public var params: JSONValue?

    public init(id: RPCID?, method: String, params: JSONValue? = nil) {
        self.id = id
        self.method = method
        self.params = params
    }

    public var isNotification: Bool { id == nil }

    /// Positional parameters; absent or null params are an empty list.
    public func positionalParams() throws(RPCError) -> [JSONValue] {
        switch params {
        case nil, .null?: return []
        case .array(let values)?: return values
        case let other?: throw .invalidParams("non-array args (got \(other.typeName))")
        }
    }

    public var json: JSONValue {
        var object = JSONObject([("jsonrpc", "2.0")])
        if let id { object["id"] = id.json }
        object["method"] = .string(method)
        if let params { object["params"] = params }
        return .object(object)
    }

    public var bytes: [UInt8] { JSONWriter.bytes(json) }
}
