import JSON
import Testing

@Suite struct JSONParserTests {
    @Test func numbersKeepTheirText() throws {
        let value = try JSONParser.parse(
            #"[0, -1, 1.50, 1e400, 115792089237316195423570985008687907853269984665640564039457584007913129639935]"#)
        #expect(
            JSONWriter.string(value)
                == "[0,-1,1.50,1e400,115792089237316195423570985008687907853269984665640564039457584007913129639935]")
    }

    @Test func objectsKeepOrderAndLastDuplicateWins() throws {
        let value = try JSONParser.parse(#"{"b":1,"a":2,"b":3}"#)
        #expect(value.objectValue?.keys == ["b", "a", "b"])
        #expect(value["b"] == 3)
    }

    @Test func escapesAndUnicode() throws {
        let value = try JSONParser.parse(#""a\"b\\c\/\n\u00e9\ud83d\ude00\ud800x""#)
        #expect(value == .string("a\"b\\c/\né😀\u{FFFD}x"))
        #expect(try JSONParser.parse(JSONWriter.bytes(value)) == value)
        #expect(JSONWriter.string(.string("\u{01}")) == #""\u0001""#)
    }

    @Test(arguments: [
        "", " ", "{", "[1,]", "{\"a\":1,}", "01", "1.", "-", ".5", "1e", "tru", "nul", "\"abc", "\"\u{01}\"",
        "\"\\x\"", "\"\\u12G4\"", "{1:2}", "[1 2]", "1 2", "{\"a\" 1}", "// comment\n1", "NaN",
    ])
    func malformedInputIsRejected(_ text: String) {
        #expect(throws: JSONError.self) { try JSONParser.parse(text) }
    }

    @Test func depthIsBounded() throws {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: JSONError.self) { try JSONParser.parse(deep) }
        let fine = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(throws: Never.self) { try JSONParser.parse(fine) }
    }

    @Test func errorsSayWhereAndWhat() {
        do {
            _ = try JSONParser.parse(#"{"a": x}"#)
            Issue.record("expected an error")
        } catch {
            #expect(error.description == "invalid character 'x' at offset 6")
        }
    }

    @Test func randomDocumentsRoundTrip() throws {
        var generator = SystemRandomNumberGenerator()
        func randomValue(_ depth: Int) -> JSONValue {
            switch Int.random(in: 0..<(depth > 3 ? 5 : 7), using: &generator) {
            case 0: return .null
            case 1: return .bool(Bool.random(using: &generator))
            case 2: return .number(String(Int64.random(in: .min ... .max, using: &generator)))
            case 3:
                return .string(
                    String(
                        (0..<Int.random(in: 0..<12, using: &generator)).map { _ in
                            Character(Unicode.Scalar(UInt8.random(in: 1...126, using: &generator)))
                        }))
            case 4: return .string("é\u{2028}😀\"\\")
            case 5: return .array((0..<Int.random(in: 0..<4, using: &generator)).map { _ in randomValue(depth + 1) })
            default:
                return .object(
                    JSONObject(
                        (0..<Int.random(in: 0..<4, using: &generator)).map { index in
                            ("k\(index)", randomValue(depth + 1))
                        }))
            }
        }
        for _ in 0..<2_000 {
            let value = randomValue(0)
            #expect(try JSONParser.parse(JSONWriter.bytes(value)) == value)
        }
    }
}
