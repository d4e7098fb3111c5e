import JSON

/// What arrived in one HTTP body or WebSocket message: a single call or a batch. Items that are not valid requests
/// are kept in place as the error response they must receive, so a batch answers every item in order.
public enum RPCMessage: Sendable, Hashable {
    case single(RPCItem)
    case batch([RPCItem])
}

/// One element of a message: a well-formed request, or the error response owed for a malformed one.
public enum RPCItem: Sendable, Hashable {
    case request(RPCRequest)
    case invalid(RPCResponse)
}

public struct RPCLimits: Sendable, Hashable {
    /// geth's `BatchRequestLimit`.
    public var maximumBatchItems: Int = 1000
    /// geth's `BatchResponseMaxSize`: after this many response bytes the rest of a batch gets -32003.
    public var maximumBatchResponseBytes: Int = 25_000_000
    /// Nesting depth of a JSON document.
    public var maximumJSONDepth: Int = 128

    public init() {}
}

public enum RPCDecoder {
    /// Decodes a message. A document that cannot be used at all (bad JSON, empty or oversized batch) is answered by
    /// the error response in `.failure`: a single object, or for "batch too large" a one-element array, as geth does.
    public static func decode(
        _ bytes: some Collection<UInt8>, limits: RPCLimits = RPCLimits()
    )
        -> Result<RPCMessage, RPCTopLevelError>
    {
        let document: JSONValue
        do {
            document = try JSONParser.parse(bytes, maximumDepth: limits.maximumJSONDepth)
        } catch {
            return .failure(.single(RPCResponse(id: .null, error: .parseError(error.description))))
        }
        switch document {
        case .array(let elements):
            if elements.isEmpty { return .failure(.single(RPCResponse(id: .null, error: .emptyBatch))) }
            if elements.count > limits.maximumBatchItems {
                // As geth: the error carries the id of the first call, the closest the protocol has to a batch id.
                let firstID = elements.lazy.compactMap { element -> RPCID? in
                    guard element["method"] != nil, let id = element["id"] else { return nil }
                    return RPCID(json: id)
                }.first
                return .failure(.batch([RPCResponse(id: firstID ?? .null, error: .batchTooLarge)]))
            }
            return .success(.batch(elements.map(item(from:))))
        default:
            return .success(.single(item(from: document)))
        }
    }

    /// Maps one JSON value to a request or to the error it deserves (with the id echoed when one can be read).
    public static func item(from value: JSONValue) -> RPCItem {
        guard let object = value.objectValue else {
            return .invalid(RPCResponse(id: .null, error: .invalidRequest("invalid request")))
        }
        let rawID = object["id"]
        let id = rawID.flatMap(RPCID.init(json:))
        if rawID != nil && id == nil {
            return .invalid(
                RPCResponse(id: .null, error: .invalidRequest("invalid request: id must be a number, string or null")))
        }
        if let version = object["jsonrpc"], version != .string("2.0") {
            return .invalid(
                RPCResponse(id: id ?? .null, error: .invalidRequest("invalid request: jsonrpc must be \"2.0\"")))
        }
        guard let method = object["method"]?.stringValue, !method.isEmpty else {
            return .invalid(RPCResponse(id: id ?? .null, error: .invalidRequest("invalid request: missing method")))
        }
        return .request(RPCRequest(id: id, method: method, params: object["params"]))
    }
}

/// A message that is answered as a whole.
public enum RPCTopLevelError: Error, Sendable, Hashable {
    case single(RPCResponse)
    case batch([RPCResponse])

    public var bytes: [UInt8] {
        switch self {
        case .single(let response): response.bytes
        case .batch(let responses): JSONWriter.bytes(.array(responses.map(\.json)))
        }
    }
}
