import Ethereum
import JSON
import TestSupport
import Testing

/// Every transaction eth-account produced (Tools/fixtures/generate.py) must come out of our code byte for byte.
@Suite struct TransactionConformanceTests {
    static func transaction(from entry: JSONValue) throws -> Transaction {
        let type = try #require(entry["type"]?.int64Value.flatMap { TransactionType(rawValue: UInt8($0)) })
        let fees: Fees =
            type == .dynamicFee
            ? .dynamic(
                maxPriorityFeePerGas: try UInt256(hexQuantity: entry.string("maxPriorityFeePerGas")),
                maxFeePerGas: try UInt256(hexQuantity: entry.string("maxFeePerGas")))
            : .gasPrice(try UInt256(hexQuantity: entry.string("gasPrice")))
        let to: Address? = try entry["to"]?.stringValue.map { try Address(hex: $0) }
        let accessList = try (entry["accessList"]?.arrayValue ?? []).map { item in
            AccessListEntry(
                address: try Address(hex: item.string("address")),
                storageKeys: try (item["storageKeys"]?.arrayValue ?? []).map { try Bytes32(hex: $0.stringValue ?? "") })
        }
        return try Transaction(
            type: type, chainId: try Hex.decodeQuantity(entry.string("chainId")),
            nonce: try Hex.decodeQuantity(entry.string("nonce")), fees: fees,
            gas: try Hex.decodeQuantity(entry.string("gas")), to: to,
            value: try UInt256(hexQuantity: entry.string("value")), data: try Hex.decode(entry.string("data")),
            accessList: accessList)
    }

    @Test func signingEncodingDecodingAndRecoveryMatchEthAccount() throws {
        let document = try Fixtures.load("transactions.json")
        let entries = try #require(document["transactions"]?.arrayValue)
        var countsByType: [TransactionType: Int] = [:]
        var leadingZeroR = 0, leadingZeroS = 0, contractCreations = 0
        for (index, entry) in entries.enumerated() {
            let transaction = try Self.transaction(from: entry)
            countsByType[transaction.type, default: 0] += 1
            if transaction.to == nil { contractCreations += 1 }
            let key = try PrivateKey(hex: entry.string("privateKey"))
            let sender = try Address(hex: entry.string("sender"))
            #expect(key.address == sender, "entry \(index): key → address")
            #expect(sender.checksummed == (try entry.string("sender")), "entry \(index): EIP-55")

            #expect(transaction.signingHash.hex == (try entry.string("signingHash")), "entry \(index): signing hash")
            let signed = transaction.signed(with: key)
            #expect(Hex.encode(signed.raw) == (try entry.string("raw")), "entry \(index): raw bytes")
            #expect(signed.hash.hex == (try entry.string("hash")), "entry \(index): hash")
            #expect(signed.signature.r.hexQuantity == (try entry.string("r")), "entry \(index): r")
            #expect(signed.signature.s.hexQuantity == (try entry.string("s")), "entry \(index): s")
            if signed.signature.r.bitLength <= 248 { leadingZeroR += 1 }
            if signed.signature.s.bitLength <= 248 { leadingZeroS += 1 }

            // Decoding the raw bytes gives back the same fields, signature and sender.
            let decoded = try SignedTransaction(raw: try Hex.decode(entry.string("raw")))
            #expect(decoded.transaction == transaction, "entry \(index): decoded fields")
            #expect(decoded.signature == signed.signature, "entry \(index): decoded signature")
            #expect(try decoded.sender() == sender, "entry \(index): recovered sender")
            #expect(decoded.hash == signed.hash)
        }
        let total = entries.count
        print(
            "transactions: \(total) (legacy \(countsByType[.legacy] ?? 0), EIP-2930 \(countsByType[.accessList] ?? 0), "
                + "EIP-1559 \(countsByType[.dynamicFee] ?? 0)); contract creations \(contractCreations); "
                + "r with leading zero byte \(leadingZeroR), s with leading zero byte \(leadingZeroS)")
        #expect(total >= 3_000)
        #expect(TransactionType.allCases.allSatisfy { (countsByType[$0] ?? 0) >= 500 })
        #expect(leadingZeroR >= 10 && leadingZeroS >= 10)
    }

    @Test func decodingRejectsWhatNodesReject() throws {
        let key = try PrivateKey(hex: "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
        let signed = Transaction.dynamicFee(
            chainId: 1, nonce: 0, maxPriorityFeePerGas: 1, maxFeePerGas: 2, gas: 21_000, to: nil, value: 0
        ).signed(with: key)
        #expect(throws: TransactionError.self) { try SignedTransaction(raw: signed.raw + [0x00]) }  // trailing byte
        #expect(throws: TransactionError.self) { try SignedTransaction(raw: signed.raw.dropLast()) }  // truncated
        #expect(throws: TransactionError.unsupportedType(0x05)) {
            try SignedTransaction(raw: [0x05] + signed.raw.dropFirst())
        }
        #expect(throws: TransactionError.empty) { try SignedTransaction(raw: []) }
        // High s (n − s) is not canonical (EIP-2).
        let highS = Secp256k1.order - signed.signature.s
        var writer = RLPWriter()
        writer.appendList { list in
            for item in try! RLPDecoder.decode(signed.raw.dropFirst()).listValue().dropLast() { list.append(item) }
            list.append(scalar: highS)
        }
        #expect(throws: TransactionError.invalidSignature) { try SignedTransaction(raw: [0x02] + writer.bytes) }
    }

    @Test func randomTransactionsRoundTrip() throws {
        var generator = SeededGenerator(seed: 99)
        let key = try PrivateKey(hex: "0x0101010101010101010101010101010101010101010101010101010101010101")
        func random256() -> UInt256 {
            UInt256(limbs: (generator.next(), generator.next(), generator.next(), generator.next()))
        }
        for _ in 0..<2_000 {
            let to =
                Bool.random(using: &generator)
                ? Address((0..<20).map { _ in UInt8.random(in: 0...255, using: &generator) }) : nil
            let data = (0..<Int.random(in: 0..<200, using: &generator)).map { _ in
                UInt8.random(in: 0...255, using: &generator)
            }
            let chainId = UInt64.random(in: 1...(1 << 53), using: &generator)
            let transaction: Transaction
            switch Int.random(in: 0..<3, using: &generator) {
            case 0:
                transaction = .legacy(
                    chainId: chainId, nonce: generator.next(), gasPrice: random256(), gas: generator.next(),
                    to: to, value: random256(), data: data)
            case 1:
                transaction = .accessList(
                    chainId: chainId, nonce: generator.next(), gasPrice: random256(),
                    gas: generator.next(), to: to, value: random256(), data: data,
                    accessList: [AccessListEntry(address: key.address, storageKeys: [.zero])])
            default:
                transaction = .dynamicFee(
                    chainId: chainId, nonce: generator.next(), maxPriorityFeePerGas: random256(),
                    maxFeePerGas: random256(), gas: generator.next(), to: to, value: random256(),
                    data: data)
            }
            let signed = transaction.signed(with: key)
            let decoded = try SignedTransaction(raw: signed.raw)
            #expect(decoded == signed)
            #expect(try decoded.sender() == key.address)
        }
    }
}
