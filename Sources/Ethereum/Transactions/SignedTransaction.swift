/// A transaction with its signature, its wire bytes (what `eth_sendRawTransaction` takes) and its hash.
public struct SignedTransaction: Sendable, Hashable {
    public let transaction: Transaction
    public let signature: Signature
    public let raw: [UInt8]
    /// keccak256 of the raw bytes: the transaction hash nodes and explorers use.
    public let hash: Bytes32

    public init(transaction: Transaction, signature: Signature) {
        self.transaction = transaction
        self.signature = signature
        self.raw = transaction.encode(signature: signature)
        self.hash = Keccak256.hash(raw)
    }

    /// The address whose key signed.
    public func sender() throws(Secp256k1Error) -> Address {
        try Secp256k1.recoverAddress(digest: transaction.signingHash, signature: signature)
    }

    /// Decodes wire bytes strictly: canonical RLP only, no trailing bytes, fields of the right sizes, a canonical
    /// (low-s) signature. The result re-encodes to exactly `raw`.
    public init(raw: some Collection<UInt8>) throws(TransactionError) {
        let bytes = Array(raw)
        guard let first = bytes.first else { throw .empty }
        do {
            if first >= 0xC0 {
                try self.init(legacy: try RLPDecoder.decode(bytes).listValue(), raw: bytes)
            } else {
                guard let type = TransactionType(rawValue: first), type != .legacy else {
                    throw TransactionError.unsupportedType(first)
                }
                try self.init(typed: type, fields: try RLPDecoder.decode(bytes.dropFirst()).listValue(), raw: bytes)
            }
        } catch let error as RLPError {
            throw .malformed(error)
        } catch let error as TransactionError {
            throw error
        } catch {
            throw .invalidSignature
        }
    }

    private init(legacy fields: [RLPItem], raw: [UInt8]) throws {
        guard fields.count == 9 else { throw RLPError.wrongItemCount(expected: "9", actual: fields.count) }
        let v = try fields[6].uint256Value()
        let chainId: UInt64?
        let recoveryId: UInt8
        if v == 27 || v == 28 {
            chainId = nil
            recoveryId = UInt8(v.uint64! - 27)
        } else if v >= 35, let small = v.uint64, small < UInt64.max / 2 {
            chainId = (small - 35) / 2
            recoveryId = UInt8((small - 35) % 2)
        } else {
            throw TransactionError.invalidV
        }
        let transaction = try Transaction(
            type: .legacy, chainId: chainId, nonce: try fields[0].uint64Value(),
            fees: .gasPrice(try fields[1].uint256Value()), gas: try fields[2].uint64Value(),
            to: try Self.recipient(fields[3]), value: try fields[4].uint256Value(), data: try fields[5].bytesValue())
        let signature = try Self.signature(r: fields[7], s: fields[8], recoveryId: recoveryId)
        self.init(transaction: transaction, signature: signature, raw: raw)
    }

    private init(typed type: TransactionType, fields: [RLPItem], raw: [UInt8]) throws {
        let expected = type == .dynamicFee ? 12 : 11
        guard fields.count == expected else {
            throw RLPError.wrongItemCount(expected: String(expected), actual: fields.count)
        }
        var index = 0
        func next() -> RLPItem {
            defer { index += 1 }
            return fields[index]
        }
        let chainId = try next().uint64Value()
        let nonce = try next().uint64Value()
        let fees: Fees
        if type == .dynamicFee {
            let tip = try next().uint256Value()
            fees = .dynamic(maxPriorityFeePerGas: tip, maxFeePerGas: try next().uint256Value())
        } else {
            fees = .gasPrice(try next().uint256Value())
        }
        let gas = try next().uint64Value()
        let to = try Self.recipient(next())
        let value = try next().uint256Value()
        let data = try next().bytesValue()
        let accessList = try Self.accessList(next())
        let yParity = try next().uint64Value()
        guard yParity <= 1 else { throw TransactionError.invalidV }
        let transaction = try Transaction(
            type: type, chainId: chainId, nonce: nonce, fees: fees, gas: gas, to: to, value: value, data: data,
            accessList: accessList)
        let signature = try Self.signature(r: next(), s: next(), recoveryId: UInt8(yParity))
        self.init(transaction: transaction, signature: signature, raw: raw)
    }

    private init(transaction: Transaction, signature: Signature, raw: [UInt8]) {
        self.transaction = transaction
        self.signature = signature
        self.raw = raw
        self.hash = Keccak256.hash(raw)
    }

    private static func recipient(_ item: RLPItem) throws -> Address? {
        let bytes = try item.bytesValue()
        if bytes.isEmpty { return nil }
        guard let address = Address(bytes) else {
            throw RLPError.wrongLength(field: "to", expected: 20, actual: bytes.count)
        }
        return address
    }

    private static func accessList(_ item: RLPItem) throws -> [AccessListEntry] {
        try item.listValue().map { entry in
            let pair = try entry.listValue()
            guard pair.count == 2 else { throw RLPError.wrongItemCount(expected: "2", actual: pair.count) }
            let addressBytes = try pair[0].bytesValue()
            guard let address = Address(addressBytes) else {
                throw RLPError.wrongLength(field: "access list address", expected: 20, actual: addressBytes.count)
            }
            let keys = try pair[1].listValue().map { key in
                let bytes = try key.bytesValue()
                guard let storageKey = Bytes32(bytes) else {
                    throw RLPError.wrongLength(field: "storage key", expected: 32, actual: bytes.count)
                }
                return storageKey
            }
            return AccessListEntry(address: address, storageKeys: keys)
        }
    }

    private static func signature(r: RLPItem, s: RLPItem, recoveryId: UInt8) throws -> Signature {
        do {
            return try Signature(r: try r.uint256Value(), s: try s.uint256Value(), recoveryId: recoveryId)
        } catch is Secp256k1Error {
            throw TransactionError.invalidSignature
        }
    }
}
