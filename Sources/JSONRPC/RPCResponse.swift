import JSON

/// A response: the caller's id and a result or an error.
public struct RPCResponse: Sendable, Hashable {
    public var id: RPCID
    public var outcome: Result<JSONValue, RPCError>

    public init(id: RPCID, result: JSONValue) {
        self.id = id
        self.outcome = .success(result)
    }

    public init(id: RPCID, error: RPCError) {
        self.id = id
        self.outcome = .failure(error)
    }

    public var result: JSONValue? { try? outcome.get() }
    public var error: RPCError? {
        if case .failure(let error) = outcome { return error }
        return nil
    }

    public var json: JSONValue {
        switch outcome {
        case .success(let result): ["jsonrpc": "2.0", "id": id.json, "result": result]
        case .failure(let error): ["jsonrpc": "2.0", "id": id.json, "error": error.json]
        }
    }

    /// Serialised directly (no intermediate object): responses are written once per request on the hot path.
    public func write(into output: inout [UInt8]) {
        output += #"{"jsonrpc":"2.0","id":"#.utf8
        JSONWriter.write(id.json, into: &output)
        switch outcome {
        case .success(let result):
            output += #","result":"#.utf8
            JSONWriter.write(result, into: &output)
        case .failure(let error):
            output += #","error":"#.utf8
            JSONWriter.write(error.json, into: &output)
        }
        output.append(UInt8(ascii: "}"))
    }

    public var bytes: [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(64)
        write(into: &output)
        return output
    }

    /// Reads a response (an upstream node's answer).
    public init(json: JSONValue) throws(RPCError) {
        guard let object = json.objectValue else { throw .invalidRequest("response is not an object") }
        guard let id = object["id"].flatMap(RPCID.init(json:)) else { throw .invalidRequest("response without id") }
        self.id = id
        if let error = object["error"], !error.isNull {
            guard let code = error["code"]?.int64Value, let message = error["message"]?.stringValue else {
                throw .invalidRequest("malformed error object")
            }
            outcome = .failure(RPCError(code: Int(code), message: message, data: error["data"]))
        } else {
            outcome = .success(object["result"] ?? .null)
        }
    }
}

/// A server-to-client notification, such as `eth_subscription`.
public struct RPCNotification: Sendable, Hashable {
    public var method: String
    public var params: JSONValue

    public init(method: String, params: JSONValue) {
        (self.method, self.params) = (method, params)
    }

    /// The one encoder of `{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":id,"result":…}}`,
    /// from the result's JSON bytes: a notification fanned out to many clients is encoded once, and only the id
    /// differs per client.
    public static func subscriptionBytes(id: String, result: [UInt8]) -> [UInt8] {
        var message = Array(#"{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":""#.utf8)
        message.reserveCapacity(message.count + id.utf8.count + 14 + result.count)
        message += id.utf8
        message += #"","result":"#.utf8
        message += result
        message += "}}".utf8
        return message
    }

    public var json: JSONValue { ["jsonrpc": "2.0", "method": .string(method), "params": params] }
    public var bytes: [UInt8] { JSONWriter.bytes(json) }
}
