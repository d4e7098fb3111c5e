import JSON

/// What makes two clients' subscriptions the same upstream subscription: the kind and its parameters in canonical
/// form (object keys sorted, hex strings lowercased), so `{"address":"0xAB…","topics":[…]}` and
/// `{"topics":[…],"address":"0xab…"}` share one.
public struct SubscriptionKey: Sendable, Hashable, CustomStringConvertible {
    public let kind: String
    public let canonicalParams: String

    public init(kind: String, params: [JSONValue]) {
        self.kind = kind
        self.canonicalParams = JSONWriter.string(.array(params.map(Self.canonical)))
    }

    private static func canonical(_ value: JSONValue) -> JSONValue {
        switch value {
        case .object(let object):
            let sorted = object.members.sorted { $0.key < $1.key }.map { ($0.key, canonical($0.value)) }
            return .object(JSONObject(sorted))
        case .array(let elements):
            return .array(elements.map(canonical))
        case .string(let string) where string.hasPrefix("0x") || string.hasPrefix("0X"):
            return .string(string.lowercased())
        default:
            return value
        }
    }

    public var description: String { "\(kind)\(canonicalParams)" }
}
