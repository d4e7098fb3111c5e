import JSON

extension SignedTransaction {
    /// The JSON-RPC form of a transaction (as geth's `eth_getTransactionByHash` and `eth_signTransaction` give it),
    /// without block fields.
    public var json: JSONValue {
        let transaction = self.transaction
        var object = JSONObject()
        object["type"] = .string(Hex.encodeQuantity(UInt64(transaction.type.rawValue)))
        if let chainId = transaction.chainId { object["chainId"] = .string(Hex.encodeQuantity(chainId)) }
        object["nonce"] = .string(Hex.encodeQuantity(transaction.nonce))
        object["to"] = transaction.to.map { .string($0.lowercaseHex) } ?? .null
        object["gas"] = .string(Hex.encodeQuantity(transaction.gas))
        switch transaction.fees {
        case .gasPrice(let price):
            object["gasPrice"] = .string(price.hexQuantity)
        case .dynamic(let tip, let cap):
            object["maxPriorityFeePerGas"] = .string(tip.hexQuantity)
            object["maxFeePerGas"] = .string(cap.hexQuantity)
        }
        object["value"] = .string(transaction.value.hexQuantity)
        object["input"] = .string(Hex.encode(transaction.data))
        if transaction.type != .legacy {
            object["accessList"] = .array(
                transaction.accessList.map { entry in
                    [
                        "address": .string(entry.address.lowercaseHex),
                        "storageKeys": .array(entry.storageKeys.map { .string($0.hex) }),
                    ]
                })
        }
        switch (transaction.type, transaction.chainId) {
        case (.legacy, let chainId?): object["v"] = .string(signature.eip155V(chainId: chainId).hexQuantity)
        case (.legacy, nil): object["v"] = .string(Hex.encodeQuantity(UInt64(signature.legacyV)))
        default:
            object["v"] = .string(Hex.encodeQuantity(UInt64(signature.recoveryId)))
            object["yParity"] = .string(Hex.encodeQuantity(UInt64(signature.recoveryId)))
        }
        object["r"] = .string(signature.r.hexQuantity)
        object["s"] = .string(signature.s.hexQuantity)
        object["hash"] = .string(hash.hex)
        return .object(object)
    }
}
