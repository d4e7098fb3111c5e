import Ethereum
import JSON
import JSONRPC

/// The transaction object of `eth_sendTransaction` / `eth_signTransaction`: what the caller gave; the filler
/// completes the rest. Field names and strictness follow geth's `TransactionArgs`.
public struct TransactionRequest: Sendable, Hashable {
    public var from: Address
    public var to: Address?
    public var gas: UInt64?
    public var gasPrice: UInt256?
    public var maxFeePerGas: UInt256?
    public var maxPriorityFeePerGas: UInt256?
    public var value: UInt256?
    public var nonce: UInt64?
    public var data: [UInt8]
    public var chainId: UInt64?
    public var accessList: [AccessListEntry]?
    public var type: TransactionType?

    public init(from: Address, to: Address? = nil, value: UInt256? = nil, data: [UInt8] = []) {
        self.from = from
        self.to = to
        self.value = value
        self.data = data
    }

    /// Parses the JSON object; every problem is a -32602 that names the field.
    public init(json: JSONValue) throws(RPCError) {
        guard let object = json.objectValue else { throw .invalidParams("transaction must be an object") }
        func field<T>(_ name: String, _ parse: (String) throws -> T) throws(RPCError) -> T? {
            guard let value = object[name], !value.isNull else { return nil }
            guard let text = value.stringValue else {
                throw .invalidParams("invalid argument 0: \(name) must be a hex string")
            }
            do { return try parse(text) } catch { throw .invalidParams("invalid argument 0: \(name): \(error)") }
        }
        guard let from = try field("from", { try Address(hex: $0) }) else {
            throw .invalidParams("invalid argument 0: missing \"from\"")
        }
        self.from = from
        to = try field("to", { try Address(hex: $0) })
        gas = try field("gas", Hex.decodeQuantity)
        gasPrice = try field("gasPrice", { try UInt256(hexQuantity: $0) })
        maxFeePerGas = try field("maxFeePerGas", { try UInt256(hexQuantity: $0) })
        maxPriorityFeePerGas = try field("maxPriorityFeePerGas", { try UInt256(hexQuantity: $0) })
        value = try field("value", { try UInt256(hexQuantity: $0) })
        nonce = try field("nonce", Hex.decodeQuantity)
        chainId = try field("chainId", Hex.decodeQuantity)
        let input = try field("input", { try Hex.decode($0) })
        let data = try field("data", { try Hex.decode($0) })
        if let input, let data, input != data {
            throw .invalidParams(
                "both \"data\" and \"input\" are set and not equal. Please use \"input\" to pass transaction call data")
        }
        self.data = input ?? data ?? []
        if let typeValue = try field("type", Hex.decodeQuantity) {
            guard let type = TransactionType(rawValue: UInt8(clamping: typeValue)), typeValue <= 2 else {
                throw .invalidParams("invalid argument 0: transaction type \(typeValue) is not supported (0, 1, 2)")
            }
            self.type = type
        }
        if let list = object["accessList"], !list.isNull {
            guard let entries = list.arrayValue else {
                throw .invalidParams("invalid argument 0: accessList must be an array")
            }
            accessList = try entries.map { entry throws(RPCError) in
                guard let address = entry["address"]?.stringValue.flatMap({ try? Address(hex: $0) }) else {
                    throw .invalidParams("invalid argument 0: accessList entries need an address")
                }
                let keys = try (entry["storageKeys"]?.arrayValue ?? []).map { key throws(RPCError) in
                    guard let text = key.stringValue, let bytes = try? Bytes32(hex: text) else {
                        throw .invalidParams("invalid argument 0: storage keys must be 32-byte hex")
                    }
                    return bytes
                }
                return AccessListEntry(address: address, storageKeys: keys)
            }
        }
        if gasPrice != nil && (maxFeePerGas != nil || maxPriorityFeePerGas != nil) {
            throw .invalidParams("both gasPrice and (maxFeePerGas or maxPriorityFeePerGas) specified")
        }
        if let cap = maxFeePerGas, let tip = maxPriorityFeePerGas, tip > cap {
            throw .invalidParams("maxFeePerGas (\(cap)) < maxPriorityFeePerGas (\(tip))")
        }
    }

    /// The call object for `eth_estimateGas`.
    var estimateJSON: JSONValue {
        var object = JSONObject([("from", .string(from.lowercaseHex))])
        if let to { object["to"] = .string(to.lowercaseHex) }
        if let value { object["value"] = .string(value.hexQuantity) }
        if !data.isEmpty { object["input"] = .string(Hex.encode(data)) }
        if let accessList {
            object["accessList"] = .array(
                accessList.map { entry in
                    [
                        "address": .string(entry.address.lowercaseHex),
                        "storageKeys": .array(entry.storageKeys.map { .string($0.hex) }),
                    ]
                })
        }
        return .object(object)
    }
}

extension TransactionRequest {
    /// A digest of every field the caller gave, stable across versions and restarts: an idempotency key is bound to
    /// it, so that the same key with a different transaction is refused instead of answered with the first hash.
    public var digest: Bytes32 {
        func text(_ value: (some CustomStringConvertible)?) -> String { value.map { "\($0)" } ?? "-" }
        let accessListText = accessList.map { list in
            list.map { entry in entry.address.lowercaseHex + ":" + entry.storageKeys.map(\.hex).joined(separator: ",") }
                .joined(separator: ";")
        }
        let fields = [
            "from=" + from.lowercaseHex, "to=" + (to?.lowercaseHex ?? "-"), "gas=" + text(gas),
            "gasPrice=" + text(gasPrice), "maxFeePerGas=" + text(maxFeePerGas),
            "maxPriorityFeePerGas=" + text(maxPriorityFeePerGas), "value=" + text(value), "nonce=" + text(nonce),
            "data=" + Hex.encode(data), "chainId=" + text(chainId), "accessList=" + (accessListText ?? "-"),
            "type=" + text(type?.rawValue),
        ]
        return Keccak256.hash(Array(fields.joined(separator: "\n").utf8))
    }
}
