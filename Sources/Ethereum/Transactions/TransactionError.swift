/// Why bytes or fields do not form a valid transaction. Descriptions follow geth's where it has one.
public struct TransactionError: Error, Sendable, Hashable, CustomStringConvertible {
    private enum Kind: Hashable, Sendable {
        case unsupportedType(UInt8)
        case empty
        case malformed(RLPError)
        case invalidField(name: String, reason: String)
        case feesDoNotMatchType
        case accessListOnLegacy
        case missingChainId
        case invalidSignature
        case invalidV
    }

    private let kind: Kind
    private init(_ kind: Kind) { self.kind = kind }

    public static func unsupportedType(_ type: UInt8) -> TransactionError { .init(.unsupportedType(type)) }
    public static let empty = TransactionError(.empty)
    public static func malformed(_ error: RLPError) -> TransactionError { .init(.malformed(error)) }
    public static func invalidField(_ name: String, _ reason: String) -> TransactionError {
        .init(.invalidField(name: name, reason: reason))
    }
    public static let feesDoNotMatchType = TransactionError(.feesDoNotMatchType)
    public static let accessListOnLegacy = TransactionError(.accessListOnLegacy)
    public static let missingChainId = TransactionError(.missingChainId)
    public static let invalidSignature = TransactionError(.invalidSignature)
    public static let invalidV = TransactionError(.invalidV)

    public var description: String {
        switch kind {
        case .unsupportedType(let type): "transaction type not supported (0x\(String(type, radix: 16)))"
        case .empty: "typed transaction too short"
        case .malformed(let error): error.description
        case .invalidField(let name, let reason): "invalid transaction field \(name): \(reason)"
        case .feesDoNotMatchType:
            "fee fields do not match the transaction type (gasPrice for types 0 and 1, "
                + "maxFeePerGas and maxPriorityFeePerGas for type 2)"
        case .accessListOnLegacy: "legacy transactions cannot carry an access list"
        case .missingChainId: "typed transactions need a chain id"
        case .invalidSignature: "invalid transaction v, r, s values"
        case .invalidV: "invalid transaction v value"
        }
    }
}
