/// Why a byte sequence is not a JSON document. The description is short and safe to show to a client.
public struct JSONError: Error, Sendable, Hashable, CustomStringConvertible {
    private enum Kind: Hashable, Sendable {
        case unexpectedEnd
        case unexpectedByte(UInt8)
        case invalidNumber
        case invalidEscape
        case invalidUnicodeEscape
        case controlCharacterInString
        case tooDeep(limit: Int)
        case trailingData
    }

    private let kind: Kind
    /// Byte offset in the input where the problem was found.
    public let offset: Int

    private init(_ kind: Kind, at offset: Int) {
        self.kind = kind
        self.offset = offset
    }

    static func unexpectedEnd(at offset: Int) -> JSONError { .init(.unexpectedEnd, at: offset) }
    static func unexpectedByte(_ byte: UInt8, at offset: Int) -> JSONError { .init(.unexpectedByte(byte), at: offset) }
    static func invalidNumber(at offset: Int) -> JSONError { .init(.invalidNumber, at: offset) }
    static func invalidEscape(at offset: Int) -> JSONError { .init(.invalidEscape, at: offset) }
    static func invalidUnicodeEscape(at offset: Int) -> JSONError { .init(.invalidUnicodeEscape, at: offset) }
    static func controlCharacter(at offset: Int) -> JSONError { .init(.controlCharacterInString, at: offset) }
    static func tooDeep(limit: Int, at offset: Int) -> JSONError { .init(.tooDeep(limit: limit), at: offset) }
    static func trailingData(at offset: Int) -> JSONError { .init(.trailingData, at: offset) }

    public var description: String {
        switch kind {
        case .unexpectedEnd: "unexpected end of JSON input"
        case .unexpectedByte(let byte):
            if byte >= 0x20 && byte < 0x7F {
                "invalid character '\(Character(Unicode.Scalar(byte)))' at offset \(offset)"
            } else {
                "invalid byte 0x\(String(byte, radix: 16)) at offset \(offset)"
            }
        case .invalidNumber: "invalid number at offset \(offset)"
        case .invalidEscape: "invalid escape in string at offset \(offset)"
        case .invalidUnicodeEscape: "invalid \\u escape in string at offset \(offset)"
        case .controlCharacterInString: "control character in string at offset \(offset)"
        case .tooDeep(let limit): "JSON nested deeper than \(limit) levels"
        case .trailingData: "invalid character after top-level value at offset \(offset)"
        }
    }
}
