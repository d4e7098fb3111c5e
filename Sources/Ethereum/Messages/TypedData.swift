import JSON

/// An EIP-712 document as sent to `eth_signTypedData_v4`, and its hashing (`hashStruct`, `encodeType`, `encodeData`
/// with MetaMask's v4 rules for arrays and nested structs).
public struct TypedData: Sendable {
    public struct Field: Sendable, Hashable {
        public let name: String
        public let type: String
    }

    public let types: [String: [Field]]
    public let primaryType: String
    public let domain: JSONObject
    public let message: JSONValue

    private static let domainFieldOrder: [(String, String)] = [
        ("name", "string"), ("version", "string"), ("chainId", "uint256"), ("verifyingContract", "address"),
        ("salt", "bytes32"),
    ]

    /// Parses the `{types, primaryType, domain, message}` document.
    public init(json: JSONValue) throws(TypedDataError) {
        guard let typesObject = json["types"]?.objectValue else { throw .missing("\"types\" object") }
        guard let primaryType = json["primaryType"]?.stringValue else { throw .missing("\"primaryType\" string") }
        guard let domain = json["domain"]?.objectValue else { throw .missing("\"domain\" object") }
        var types: [String: [Field]] = [:]
        for (name, fieldsValue) in typesObject {
            guard let fields = fieldsValue.arrayValue else {
                throw .invalidValue("types.\(name)", "field list", "not an array")
            }
            types[name] = try fields.map { field throws(TypedDataError) in
                guard let fieldName = field["name"]?.stringValue, let fieldType = field["type"]?.stringValue else {
                    throw .invalidValue("types.\(name)", "field", "each field needs \"name\" and \"type\" strings")
                }
                return Field(name: fieldName, type: fieldType)
            }
        }
        if types["EIP712Domain"] == nil {
            // Documents that omit the domain type get the fields their domain carries, in EIP-712's order.
            types["EIP712Domain"] = Self.domainFieldOrder.filter { domain[$0.0] != nil }.map {
                Field(name: $0.0, type: $0.1)
            }
        }
        guard types[primaryType] != nil else { throw .unknownType(primaryType) }
        self.types = types
        self.primaryType = primaryType
        self.domain = domain
        self.message = json["message"] ?? .null
        if primaryType != "EIP712Domain" && message.objectValue == nil { throw .missing("\"message\" object") }
    }

    public func domainSeparator() throws(TypedDataError) -> Bytes32 {
        try hashStruct("EIP712Domain", .object(domain), path: "domain")
    }

    /// `hashStruct(message)`; `nil` when the primary type is the domain itself (then only the domain is signed).
    public func messageHash() throws(TypedDataError) -> Bytes32? {
        primaryType == "EIP712Domain" ? nil : try hashStruct(primaryType, message, path: "message")
    }

    /// keccak256(0x19 ‖ 0x01 ‖ domainSeparator ‖ hashStruct(message)): the digest that is signed.
    public func signingHash() throws(TypedDataError) -> Bytes32 {
        var payload: [UInt8] = [0x19, 0x01]
        payload += try domainSeparator().bytes
        if let messageHash = try messageHash() { payload += messageHash.bytes }
        return Keccak256.hash(payload)
    }

    // MARK: encodeType

    /// `Name(type1 name1,…)` followed by every referenced struct type, sorted by name.
    public func encodeType(_ name: String) throws(TypedDataError) -> String {
        var dependencies = Set<String>()
        try collectDependencies(of: name, into: &dependencies)
        dependencies.remove(name)
        return try ([name] + dependencies.sorted()).map { type throws(TypedDataError) in
            guard let fields = types[type] else { throw .unknownType(type) }
            return type + "(" + fields.map { "\($0.type) \($0.name)" }.joined(separator: ",") + ")"
        }.joined()
    }

    private func collectDependencies(of name: String, into found: inout Set<String>) throws(TypedDataError) {
        guard !found.contains(name), let fields = types[name] else { return }
        found.insert(name)
        for field in fields {
            let base = Self.baseType(field.type)
            if types[base] != nil { try collectDependencies(of: base, into: &found) }
        }
    }

    /// `Person[][3]` → `Person`.
    private static func baseType(_ type: String) -> String {
        guard let bracket = type.firstIndex(of: "[") else { return type }
        return String(type[..<bracket])
    }

    public func typeHash(_ name: String) throws(TypedDataError) -> Bytes32 {
        Keccak256.hash(Array(try encodeType(name).utf8))
    }

    // MARK: encodeData

    public func hashStruct(_ name: String, _ value: JSONValue, path: String) throws(TypedDataError) -> Bytes32 {
        guard let fields = types[name] else { throw .unknownType(name) }
        guard let object = value.objectValue else { throw .invalidValue(path, name, "expected an object") }
        var encoded = try typeHash(name).bytes
        encoded.reserveCapacity(32 * (fields.count + 1))
        for field in fields {
            guard let fieldValue = object[field.name] else { throw .missing("field \(path).\(field.name)") }
            encoded += try encodeField(type: field.type, value: fieldValue, path: "\(path).\(field.name)")
        }
        return Keccak256.hash(encoded)
    }

    /// The 32-byte word for one field value.
    private func encodeField(type: String, value: JSONValue, path: String) throws(TypedDataError) -> [UInt8] {
        if type.hasSuffix("]"), let open = type.lastIndex(of: "[") {
            let elementType = String(type[..<open])
            let lengthText = type[type.index(after: open)..<type.index(before: type.endIndex)]
            guard let elements = value.arrayValue else { throw .invalidValue(path, type, "expected an array") }
            if !lengthText.isEmpty {
                guard let length = Int(lengthText) else { throw .unknownType(type) }
                guard elements.count == length else {
                    throw .invalidValue(path, type, "expected \(length) elements, got \(elements.count)")
                }
            }
            var concatenated: [UInt8] = []
            for (index, element) in elements.enumerated() {
                concatenated += try encodeField(type: elementType, value: element, path: "\(path)[\(index)]")
            }
            return Keccak256.hash(concatenated).bytes
        }
        if types[type] != nil {
            return try hashStruct(type, value, path: path).bytes
        }
        switch type {
        case "string":
            guard let string = value.stringValue else { throw .invalidValue(path, type, "expected a string") }
            return Keccak256.hash(Array(string.utf8)).bytes
        case "bytes":
            return Keccak256.hash(try Self.hexBytes(value, path: path, type: type)).bytes
        case "bool":
            switch value {
            case .bool(let flag): return UInt256(flag ? 1 : 0).bigEndianBytes
            case .string("true"): return UInt256(1).bigEndianBytes
            case .string("false"): return UInt256.zero.bigEndianBytes
            default: throw .invalidValue(path, type, "expected true or false")
            }
        case "address":
            guard let text = value.stringValue, let address = try? Address(hex: text) else {
                throw .invalidValue(path, type, "expected a 0x-prefixed 20-byte hex string")
            }
            return [UInt8](repeating: 0, count: 12) + address.bytes
        default:
            if type.hasPrefix("bytes"), let size = Int(type.dropFirst(5)), (1...32).contains(size) {
                let bytes = try Self.hexBytes(value, path: path, type: type)
                guard bytes.count <= size else {
                    throw .invalidValue(path, type, "\(bytes.count) bytes do not fit in \(size)")
                }
                return bytes + [UInt8](repeating: 0, count: 32 - bytes.count)
            }
            if type.hasPrefix("uint"), let bits = Self.integerBits(type.dropFirst(4)) {
                let (negative, magnitude) = try Self.integer(value, path: path, type: type)
                guard !negative || magnitude.isZero else { throw .invalidValue(path, type, "negative") }
                guard magnitude.bitLength <= bits else { throw .invalidValue(path, type, "out of range") }
                return magnitude.bigEndianBytes
            }
            if type.hasPrefix("int"), let bits = Self.integerBits(type.dropFirst(3)) {
                let (negative, magnitude) = try Self.integer(value, path: path, type: type)
                let limit = UInt256(powerOfTwo: bits - 1)
                guard negative ? magnitude <= limit : magnitude < limit else {
                    throw .invalidValue(path, type, "out of range")
                }
                return (negative ? magnitude.twosComplement : magnitude).bigEndianBytes
            }
            throw .unknownType(type)
        }
    }

    private static func integerBits(_ suffix: Substring) -> Int? {
        if suffix.isEmpty { return nil }
        guard let bits = Int(suffix), bits % 8 == 0, (8...256).contains(bits) else { return nil }
        return bits
    }

    /// Integers arrive as JSON numbers, decimal strings, or `0x` hex strings (dApps send large values as strings).
    private static func integer(
        _ value: JSONValue, path: String, type: String
    ) throws(TypedDataError)
        -> (negative: Bool, magnitude: UInt256)
    {
        let text: Substring
        switch value {
        case .number(let number): text = Substring(number)
        case .string(let string): text = Substring(string)
        default: throw .invalidValue(path, type, "expected a number or a numeric string")
        }
        let negative = text.hasPrefix("-")
        let digits = negative ? text.dropFirst() : text
        let magnitude: UInt256?
        if digits.hasPrefix("0x") || digits.hasPrefix("0X") {
            let hex = digits.dropFirst(2)
            let padded = hex.count % 2 == 1 ? "0" + hex : String(hex)
            magnitude = (try? Hex.decode("0x" + padded)).flatMap { $0.isEmpty ? nil : UInt256(bigEndian: $0) }
        } else {
            magnitude = UInt256(decimal: digits)
        }
        guard let magnitude else { throw .invalidValue(path, type, "\"\(text)\" is not an integer") }
        return (negative, magnitude)
    }

    private static func hexBytes(_ value: JSONValue, path: String, type: String) throws(TypedDataError) -> [UInt8] {
        guard let text = value.stringValue, let bytes = try? Hex.decode(text) else {
            throw .invalidValue(path, type, "expected 0x-prefixed hex")
        }
        return bytes
    }
}
