/// A strict RFC 8259 parser over bytes.
///
/// Strict where clients could be misunderstood (no trailing commas, no comments, no leading zeros in numbers, no
/// raw control characters in strings) and bounded in nesting depth so that a hostile `[[[[…` cannot exhaust the
/// stack.
public struct JSONParser {
    public static let defaultMaximumDepth = 512

    public static func parse(
        _ bytes: some Collection<UInt8>, maximumDepth: Int = defaultMaximumDepth
    ) throws(JSONError)
        -> JSONValue
    {
        let result: Result<JSONValue, JSONError>? = bytes.withContiguousStorageIfAvailable { buffer in
            Result { () throws(JSONError) -> JSONValue in try parse(buffer: buffer, maximumDepth: maximumDepth) }
        }
        if let result { return try result.get() }
        let copy = Array(bytes)
        return try copy.withUnsafeBufferPointer { buffer throws(JSONError) in
            try parse(buffer: buffer, maximumDepth: maximumDepth)
        }
    }

    public static func parse(_ string: String, maximumDepth: Int = defaultMaximumDepth) throws(JSONError) -> JSONValue {
        try parse(Array(string.utf8), maximumDepth: maximumDepth)
    }

    static func parse(buffer: UnsafeBufferPointer<UInt8>, maximumDepth: Int) throws(JSONError) -> JSONValue {
        var parser = JSONParser(buffer: buffer, maximumDepth: maximumDepth)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        guard parser.position == buffer.count else { throw .trailingData(at: parser.position) }
        return value
    }

    private let buffer: UnsafeBufferPointer<UInt8>
    private let maximumDepth: Int
    private var position = 0

    private init(buffer: UnsafeBufferPointer<UInt8>, maximumDepth: Int) {
        self.buffer = buffer
        self.maximumDepth = maximumDepth
    }

    private mutating func skipWhitespace() {
        while position < buffer.count {
            switch buffer[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    private func peek() throws(JSONError) -> UInt8 {
        guard position < buffer.count else { throw .unexpectedEnd(at: position) }
        return buffer[position]
    }

    private mutating func parseValue(depth: Int) throws(JSONError) -> JSONValue {
        switch try peek() {
        case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"):
            try expectLiteral("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expectLiteral("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expectLiteral("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return .number(try parseNumber())
        case let byte:
            throw .unexpectedByte(byte, at: position)
        }
    }

    private mutating func expectLiteral(_ literal: StaticString) throws(JSONError) {
        let count = literal.utf8CodeUnitCount
        let start = literal.utf8Start
        for index in 0..<count {
            let byte = try peek()
            guard byte == start[index] else { throw .unexpectedByte(byte, at: position) }
            position += 1
        }
    }

    private mutating func parseObject(depth: Int) throws(JSONError) -> JSONValue {
        guard depth <= maximumDepth else { throw .tooDeep(limit: maximumDepth, at: position) }
        position += 1  // {
        var members: [(String, JSONValue)] = []
        skipWhitespace()
        if try peek() == UInt8(ascii: "}") {
            position += 1
            return .object(JSONObject(members))
        }
        while true {
            skipWhitespace()
            let byte = try peek()
            guard byte == UInt8(ascii: "\"") else { throw .unexpectedByte(byte, at: position) }
            let key = try parseString()
            skipWhitespace()
            let colon = try peek()
            guard colon == UInt8(ascii: ":") else { throw .unexpectedByte(colon, at: position) }
            position += 1
            skipWhitespace()
            members.append((key, try parseValue(depth: depth)))
            skipWhitespace()
            switch try peek() {
            case UInt8(ascii: ","): position += 1
            case UInt8(ascii: "}"):
                position += 1
                return .object(JSONObject(members))
            case let other: throw .unexpectedByte(other, at: position)
            }
        }
    }

    private mutating func parseArray(depth: Int) throws(JSONError) -> JSONValue {
        guard depth <= maximumDepth else { throw .tooDeep(limit: maximumDepth, at: position) }
        position += 1  // [
        var elements: [JSONValue] = []
        skipWhitespace()
        if try peek() == UInt8(ascii: "]") {
            position += 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try parseValue(depth: depth))
            skipWhitespace()
            switch try peek() {
            case UInt8(ascii: ","): position += 1
            case UInt8(ascii: "]"):
                position += 1
                return .array(elements)
            case let other: throw .unexpectedByte(other, at: position)
            }
        }
    }

    private mutating func parseNumber() throws(JSONError) -> String {
        let start = position
        if buffer[position] == UInt8(ascii: "-") { position += 1 }
        guard position < buffer.count else { throw .invalidNumber(at: start) }
        if buffer[position] == UInt8(ascii: "0") {
            position += 1
        } else if isDigit(buffer[position]) {
            while position < buffer.count && isDigit(buffer[position]) { position += 1 }
        } else {
            throw .invalidNumber(at: start)
        }
        if position < buffer.count && buffer[position] == UInt8(ascii: ".") {
            position += 1
            guard position < buffer.count && isDigit(buffer[position]) else { throw .invalidNumber(at: start) }
            while position < buffer.count && isDigit(buffer[position]) { position += 1 }
        }
        if position < buffer.count && (buffer[position] | 0x20) == UInt8(ascii: "e") {
            position += 1
            if position < buffer.count
                && (buffer[position] == UInt8(ascii: "+") || buffer[position] == UInt8(ascii: "-"))
            {
                position += 1
            }
            guard position < buffer.count && isDigit(buffer[position]) else { throw .invalidNumber(at: start) }
            while position < buffer.count && isDigit(buffer[position]) { position += 1 }
        }
        return String(decoding: UnsafeBufferPointer(rebasing: buffer[start..<position]), as: UTF8.self)
    }

    @inline(__always) private func isDigit(_ byte: UInt8) -> Bool {
        byte &- UInt8(ascii: "0") < 10
    }

    private mutating func parseString() throws(JSONError) -> String {
        position += 1  // opening quote
        let start = position
        // Fast path: no escapes, the common case for method names, hex data and ids.
        while position < buffer.count {
            let byte = buffer[position]
            if byte == UInt8(ascii: "\"") {
                let string = String(decoding: UnsafeBufferPointer(rebasing: buffer[start..<position]), as: UTF8.self)
                position += 1
                return string
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw .controlCharacter(at: position) }
            position += 1
        }
        guard position < buffer.count else { throw .unexpectedEnd(at: position) }
        var bytes = Array(UnsafeBufferPointer(rebasing: buffer[start..<position]))
        while position < buffer.count {
            let byte = buffer[position]
            switch byte {
            case UInt8(ascii: "\""):
                position += 1
                return String(decoding: bytes, as: UTF8.self)
            case UInt8(ascii: "\\"):
                position += 1
                try appendEscape(to: &bytes)
            case 0..<0x20:
                throw .controlCharacter(at: position)
            default:
                bytes.append(byte)
                position += 1
            }
        }
        throw .unexpectedEnd(at: position)
    }

    private mutating func appendEscape(to bytes: inout [UInt8]) throws(JSONError) {
        let escape = try peek()
        position += 1
        switch escape {
        case UInt8(ascii: "\""): bytes.append(0x22)
        case UInt8(ascii: "\\"): bytes.append(0x5C)
        case UInt8(ascii: "/"): bytes.append(0x2F)
        case UInt8(ascii: "b"): bytes.append(0x08)
        case UInt8(ascii: "f"): bytes.append(0x0C)
        case UInt8(ascii: "n"): bytes.append(0x0A)
        case UInt8(ascii: "r"): bytes.append(0x0D)
        case UInt8(ascii: "t"): bytes.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = try parseHex4()
            if (0xD800..<0xDC00).contains(scalar) {
                // A high surrogate must be followed by an escaped low surrogate; a lone one becomes U+FFFD as in Go.
                if position + 1 < buffer.count && buffer[position] == UInt8(ascii: "\\")
                    && buffer[position + 1] == UInt8(ascii: "u")
                {
                    let saved = position
                    position += 2
                    let low = try parseHex4()
                    if (0xDC00..<0xE000).contains(low) {
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else {
                        position = saved
                        scalar = 0xFFFD
                    }
                } else {
                    scalar = 0xFFFD
                }
            } else if (0xDC00..<0xE000).contains(scalar) {
                scalar = 0xFFFD
            }
            let unicode = Unicode.Scalar(scalar) ?? "\u{FFFD}"
            bytes.append(contentsOf: UTF8.encode(unicode)!)
        default:
            throw .invalidEscape(at: position - 1)
        }
    }

    private mutating func parseHex4() throws(JSONError) -> UInt32 {
        guard position + 4 <= buffer.count else { throw .unexpectedEnd(at: buffer.count) }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = buffer[position]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw .invalidUnicodeEscape(at: position)
            }
            value = value << 4 | UInt32(digit)
            position += 1
        }
        return value
    }
}
