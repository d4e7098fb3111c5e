/// Why an `eth_signTypedData_v4` document cannot be hashed. Messages name the offending type or field so that a
/// dApp developer can fix the document.
public struct TypedDataError: Error, Sendable, Hashable, CustomStringConvertible {
    public let message: String

    init(_ message: String) { self.message = message }

    static func missing(_ what: String) -> TypedDataError { .init("typed data: missing \(what)") }
    static func unknownType(_ type: String) -> TypedDataError { .init("typed data: unknown type \"\(type)\"") }
    static func invalidValue(_ path: String, _ type: String, _ reason: String) -> TypedDataError {
        .init("typed data: \(path) is not a valid \(type): \(reason)")
    }

    public var description: String { message }
}
