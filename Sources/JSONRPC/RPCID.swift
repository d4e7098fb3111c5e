import JSON

/// A request id, echoed back exactly as the client wrote it: a number (its literal text), a string, or null.
public enum RPCID: Sendable, Hashable, CustomStringConvertible {
    case number(String)
    case string(String)
    case null

    /// `nil` for JSON types JSON-RPC does not allow as ids (objects, arrays, booleans).
    public init?(json: JSONValue) {
        switch json {
        case .number(let text): self = .number(text)
        case .string(let string): self = .string(string)
        case .null: self = .null
        default: return nil
        }
    }

    public var json: JSONValue {
        switch self {
        case .number(let text): .number(text)
        case .string(let string): .string(string)
        case .null: .null
        }
    }

    public var description: String { JSONWriter.string(json) }
}
