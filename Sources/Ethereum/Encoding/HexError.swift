/// Why a string is not the hex the Ethereum JSON-RPC API expects. Messages follow geth's wording where it has one.
public struct HexError: Error, Sendable, Hashable, CustomStringConvertible {
    private enum Kind: Hashable, Sendable {
        case missingPrefix
        case empty
        case oddLength
        case invalidCharacter(Character)
        case leadingZero
        case tooLarge(bits: Int)
        case wrongLength(expected: Int, actual: Int)
        case badChecksum
    }

    private let kind: Kind

    private init(_ kind: Kind) { self.kind = kind }

    public static let missingPrefix = HexError(.missingPrefix)
    public static let empty = HexError(.empty)
    public static let oddLength = HexError(.oddLength)
    public static let leadingZero = HexError(.leadingZero)
    public static let badChecksum = HexError(.badChecksum)
    public static func invalidCharacter(_ character: Character) -> HexError { .init(.invalidCharacter(character)) }
    public static func tooLarge(bits: Int) -> HexError { .init(.tooLarge(bits: bits)) }
    public static func wrongLength(expected: Int, actual: Int) -> HexError {
        .init(.wrongLength(expected: expected, actual: actual))
    }

    public var description: String {
        switch kind {
        case .missingPrefix: "hex string without 0x prefix"
        case .empty: "hex string \"0x\""
        case .oddLength: "hex string of odd length"
        case .invalidCharacter(let character): "invalid hex character \(String(reflecting: character))"
        case .leadingZero: "hex number with leading zero digits"
        case .tooLarge(let bits): "hex number > \(bits) bits"
        case .wrongLength(let expected, let actual): "hex string has length \(actual), want \(expected) bytes"
        case .badChecksum: "address checksum (EIP-55) does not match"
        }
    }
}
