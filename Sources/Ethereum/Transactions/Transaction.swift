/// The three transaction envelopes nodes accept: legacy (EIP-155 replay-protected, or pre-155 when decoding old
/// transactions), EIP-2930 access-list, and EIP-1559 dynamic-fee.
public enum TransactionType: UInt8, Sendable, Hashable, CaseIterable {
    case legacy = 0
    case accessList = 1
    case dynamicFee = 2
}

/// How a transaction pays for gas. Types 0 and 1 name one price; type 2 a cap and a tip.
public enum Fees: Sendable, Hashable {
    case gasPrice(UInt256)
    case dynamic(maxPriorityFeePerGas: UInt256, maxFeePerGas: UInt256)
}

public struct AccessListEntry: Sendable, Hashable {
    public var address: Address
    public var storageKeys: [Bytes32]

    public init(address: Address, storageKeys: [Bytes32]) {
        self.address = address
        self.storageKeys = storageKeys
    }
}

/// An unsigned transaction: every field a signature commits to.
public struct Transaction: Sendable, Hashable {
    public private(set) var type: TransactionType
    /// `nil` only for a legacy transaction without replay protection (decoded from old raw bytes; never signed).
    public var chainId: UInt64?
    public var nonce: UInt64
    public private(set) var fees: Fees
    public var gas: UInt64
    /// `nil` creates a contract (RLP empty string), never a sentinel address.
    public var to: Address?
    public var value: UInt256
    public var data: [UInt8]
    public private(set) var accessList: [AccessListEntry]

    public init(
        type: TransactionType, chainId: UInt64?, nonce: UInt64, fees: Fees, gas: UInt64, to: Address?,
        value: UInt256, data: [UInt8], accessList: [AccessListEntry] = []
    ) throws(TransactionError) {
        switch (type, fees) {
        case (.legacy, .gasPrice), (.accessList, .gasPrice), (.dynamicFee, .dynamic): break
        default: throw .feesDoNotMatchType
        }
        if type == .legacy && !accessList.isEmpty { throw .accessListOnLegacy }
        if type != .legacy && chainId == nil { throw .missingChainId }
        self.type = type
        self.chainId = chainId
        self.nonce = nonce
        self.fees = fees
        self.gas = gas
        self.to = to
        self.value = value
        self.data = data
        self.accessList = accessList
    }

    /// The digest a key signs: keccak256 of the unsigned encoding (EIP-155 appends chainId, 0, 0 for legacy;
    /// typed transactions prefix their type byte, EIP-2718).
    public var signingHash: Bytes32 {
        Keccak256.hash(encode(signature: nil))
    }

    public func signed(with key: PrivateKey) -> SignedTransaction {
        SignedTransaction(transaction: self, signature: Secp256k1.sign(digest: signingHash, with: key))
    }

    /// The unsigned payload (for `signature == nil`) or the signed wire encoding.
    func encode(signature: Signature?) -> [UInt8] {
        var writer = RLPWriter(capacity: 160 + data.count + accessList.count * 64)
        if type != .legacy { writer.append(encoded: [type.rawValue]) }
        writer.appendList { list in
            if type != .legacy { list.append(scalar: chainId ?? 0) }
            list.append(scalar: nonce)
            switch fees {
            case .gasPrice(let price):
                list.append(scalar: price)
            case .dynamic(let tip, let cap):
                list.append(scalar: tip)
                list.append(scalar: cap)
            }
            list.append(scalar: gas)
            list.append(bytes: to?.bytes ?? [])
            list.append(scalar: value)
            list.append(bytes: data)
            if type != .legacy {
                list.appendList { entries in
                    for entry in accessList {
                        entries.appendList { pair in
                            pair.append(bytes: entry.address.bytes)
                            pair.appendList { keys in
                                for key in entry.storageKeys { keys.append(bytes: key.bytes) }
                            }
                        }
                    }
                }
            }
            if let signature {
                switch (type, chainId) {
                case (.legacy, let chainId?): list.append(scalar: signature.eip155V(chainId: chainId))
                case (.legacy, nil): list.append(scalar: UInt64(signature.legacyV))
                default: list.append(scalar: UInt64(signature.recoveryId))
                }
                list.append(scalar: signature.r)
                list.append(scalar: signature.s)
            } else if type == .legacy, let chainId {
                list.append(scalar: chainId)
                list.append(scalar: UInt64(0))
                list.append(scalar: UInt64(0))
            }
        }
        return writer.bytes
    }
}

extension Transaction {
    public static func legacy(
        chainId: UInt64, nonce: UInt64, gasPrice: UInt256, gas: UInt64, to: Address?, value: UInt256,
        data: [UInt8] = []
    ) -> Transaction {
        try! Transaction(
            type: .legacy, chainId: chainId, nonce: nonce, fees: .gasPrice(gasPrice), gas: gas, to: to,
            value: value, data: data)
    }

    public static func accessList(
        chainId: UInt64, nonce: UInt64, gasPrice: UInt256, gas: UInt64, to: Address?, value: UInt256,
        data: [UInt8] = [], accessList: [AccessListEntry]
    ) -> Transaction {
        try! Transaction(
            type: .accessList, chainId: chainId, nonce: nonce, fees: .gasPrice(gasPrice), gas: gas, to: to,
            value: value, data: data, accessList: accessList)
    }

    public static func dynamicFee(
        chainId: UInt64, nonce: UInt64, maxPriorityFeePerGas: UInt256, maxFeePerGas: UInt256, gas: UInt64,
        to: Address?, value: UInt256, data: [UInt8] = [], accessList: [AccessListEntry] = []
    ) -> Transaction {
        try! Transaction(
            type: .dynamicFee, chainId: chainId, nonce: nonce,
            fees: .dynamic(maxPriorityFeePerGas: maxPriorityFeePerGas, maxFeePerGas: maxFeePerGas), gas: gas,
            to: to, value: value, data: data, accessList: accessList)
    }
}
