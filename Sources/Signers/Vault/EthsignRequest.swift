import Ethereum
import JSON
import Signers

/// The body of the ethsign plugin's `POST <mount>/accounts/<address>/sign` for a transaction, or why the plugin must
/// not be asked: it builds `types.NewTransaction(nonce, to, value, gas, gasPrice, data)` and signs it with
/// `EIP155Signer(chainId)`, or with the Homestead signer when chainId is 0 (backend/path_sign.go). So it signs legacy
/// transactions only, and chain id 0 would give one without replay protection, valid on every chain.
enum EthsignRequest {
    static func body(for transaction: Transaction, backend: String) throws(SignerError) -> JSONValue {
        guard case .gasPrice(let gasPrice) = transaction.fees, transaction.type == .legacy else {
            let kind = transaction.type == .dynamicFee ? "an EIP-1559 (type 2)" : "an EIP-2930 (type 1)"
            throw .rejected(
                "\(backend): the ethsign plugin signs only legacy (EIP-155) transactions, and this is \(kind) one; "
                    + "send gasPrice instead of maxFeePerGas, or set legacyForDynamicFee to have the gateway send "
                    + "EIP-1559 requests as legacy transactions with gasPrice = maxFeePerGas")
        }
        guard let chainId = transaction.chainId, chainId != 0 else {
            throw .rejected(
                "\(backend): chain id 0 would make the ethsign plugin sign a pre-EIP-155 transaction, replayable on "
                    + "every chain; refused")
        }
        // Every field as 0x-hex: the plugin parses "0x…" as hex and anything else as decimal. `data` is always sent
        // ("0x" when empty): the plugin refuses an absent one as "empty hex string". An absent `to` creates a
        // contract, as the plugin's "" default does.
        var fields: [(String, JSONValue)] = [
            ("data", .string(Hex.encode(transaction.data))),
            ("value", .string(transaction.value.hexQuantity)),
            ("nonce", .string(Hex.encodeQuantity(transaction.nonce))),
            ("gas", .string(Hex.encodeQuantity(transaction.gas))),
            ("gasPrice", .string(gasPrice.hexQuantity)),
            ("chainId", .string(Hex.encodeQuantity(chainId))),
        ]
        if let to = transaction.to { fields.insert(("to", .string(to.lowercaseHex)), at: 0) }
        return .object(JSONObject(fields))
    }

    /// `data.signed_transaction` of the answer: the raw signed transaction, `0x`-hex.
    static func signedTransaction(from answer: JSONValue?, backend: String) throws(SignerError) -> [UInt8] {
        guard let text = answer?["data"]?["signed_transaction"]?.stringValue else {
            throw .invalidSignature("\(backend): the plugin answered without data.signed_transaction")
        }
        do {
            return try Hex.decode(text)
        } catch {
            throw .invalidSignature("\(backend): signed_transaction is not hex (\(error))")
        }
    }
}
