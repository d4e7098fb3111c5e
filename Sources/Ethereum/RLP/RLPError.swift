/// Why bytes are not canonical RLP. Descriptions follow go-ethereum's `rlp` package, which nodes answer with.
public struct RLPError: Error, Sendable, Hashable, CustomStringConvertible {
    private enum Kind: Hashable, Sendable {
        case truncated
        case trailingBytes
        case nonCanonicalSize
        case nonCanonicalInteger
        case singleByteAsString
        case tooDeep(limit: Int)
        case expectedList
        case expectedBytes
        case wrongItemCount(expected: String, actual: Int)
        case integerTooLarge(bits: Int)
        case wrongLength(field: String, expected: Int, actual: Int)
    }

    private let kind: Kind
    private init(_ kind: Kind) { self.kind = kind }

    public static let truncated = RLPError(.truncated)
    public static let trailingBytes = RLPError(.trailingBytes)
    public static let nonCanonicalSize = RLPError(.nonCanonicalSize)
    public static let nonCanonicalInteger = RLPError(.nonCanonicalInteger)
    public static let singleByteAsString = RLPError(.singleByteAsString)
    public static let expectedList = RLPError(.expectedList)
    public static let expectedBytes = RLPError(.expectedBytes)
    public static func tooDeep(limit: Int) -> RLPError { .init(.tooDeep(limit: limit)) }
    public static func wrongItemCount(expected: String, actual: Int) -> RLPError {
        .init(.wrongItemCount(expected: expected, actual: actual))
    }
    public static func integerTooLarge(bits: Int) -> RLPError { .init(.integerTooLarge(bits: bits)) }
    public static func wrongLength(field: String, expected: Int, actual: Int) -> RLPError {
        .init(.wrongLength(field: field, expected: expected, actual: actual))
    }

    public var description: String {
        switch kind {
        case .truncated: "rlp: value size exceeds available input length"
        case .trailingBytes: "rlp: input contains more than one value"
        case .nonCanonicalSize: "rlp: non-canonical size information"
        case .nonCanonicalInteger: "rlp: non-canonical integer (leading zero bytes)"
        case .singleByteAsString: "rlp: non-canonical size information (single byte below 0x80 encoded as string)"
        case .tooDeep(let limit): "rlp: nested deeper than \(limit) lists"
        case .expectedList: "rlp: expected list"
        case .expectedBytes: "rlp: expected string or byte"
        case .wrongItemCount(let expected, let actual): "rlp: expected \(expected) list elements, got \(actual)"
        case .integerTooLarge(let bits): "rlp: integer larger than \(bits) bits"
        case .wrongLength(let field, let expected, let actual):
            "rlp: \(field) must be \(expected) bytes, got \(actual)"
        }
    }
}
