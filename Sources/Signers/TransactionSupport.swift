import Ethereum

/// The transaction envelopes a backend can sign, so that the filler builds one it can: a digest signer signs any
/// encoding the gateway makes; Vault's ethsign plugin encodes legacy EIP-155 transactions only.
///
/// The choice is made before the nonce is assigned and the journal records the transaction, because a backend
/// must sign exactly what was requested (`Wallet.verify(raw:transaction:account:)`): converting afterwards would be
/// a different transaction from the one the pipeline holds.
public struct TransactionSupport: Sendable, Hashable {
    /// Only type 0 (EIP-155, with a chain id).
    public let legacyOnly: Bool
    /// For a legacy-only signer: whether a request that names EIP-1559 fees is signed as legacy with
    /// `gasPrice = maxFeePerGas`, the most the caller agreed to pay per gas (a legacy transaction pays all of it,
    /// where a type 2 would pay base fee + tip). Off: such a request is refused, saying so.
    public let dynamicFeeAsLegacy: Bool

    public static let all = TransactionSupport(legacyOnly: false, dynamicFeeAsLegacy: false)

    public static func legacyOnly(dynamicFeeAsLegacy: Bool) -> TransactionSupport {
        TransactionSupport(legacyOnly: true, dynamicFeeAsLegacy: dynamicFeeAsLegacy)
    }

    private init(legacyOnly: Bool, dynamicFeeAsLegacy: Bool) {
        self.legacyOnly = legacyOnly
        self.dynamicFeeAsLegacy = dynamicFeeAsLegacy
    }

    public func allows(_ type: TransactionType) -> Bool { !legacyOnly || type == .legacy }
}
