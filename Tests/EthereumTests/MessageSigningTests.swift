import Ethereum
import JSON
import Testing

/// EIP-191 and EIP-712 against eth-account's output (Tools/fixtures/generate.py).
@Suite struct MessageSigningTests {
    @Test func personalSignMatchesEthAccount() throws {
        let entries = try #require(try Fixtures.load("personal_sign.json")["messages"]?.arrayValue)
        for (index, entry) in entries.enumerated() {
            let message = try Hex.decode(entry.string("message"))
            let key = try PrivateKey(hex: entry.string("privateKey"))
            let hash = PersonalMessage.hash(message)
            #expect(hash.hex == (try entry.string("hash")), "message \(index): hash")
            let signature = Secp256k1.sign(digest: hash, with: key)
            #expect(Hex.encode(signature.rsv) == (try entry.string("signature")), "message \(index): signature")
            let recovered = try Secp256k1.recoverAddress(
                digest: hash, signature: Signature(rsv: try Hex.decode(entry.string("signature"))))
            #expect(recovered == (try Address(hex: entry.string("address"))))
        }
        print("personal_sign: \(entries.count) messages")
        #expect(entries.count >= 200)
    }

    @Test func typedDataMatchesEthAccount() throws {
        let entries = try #require(try Fixtures.load("typed_data.json")["documents"]?.arrayValue)
        for (index, entry) in entries.enumerated() {
            let typedData = try TypedData(json: try #require(entry["typedData"]))
            #expect(
                try typedData.domainSeparator().hex == (try entry.string("domainSeparator")),
                "document \(index): domain")
            if let expected = entry["messageHash"]?.stringValue {
                #expect(try typedData.messageHash()?.hex == expected, "document \(index): hashStruct(message)")
            }
            let hash = try typedData.signingHash()
            #expect(hash.hex == (try entry.string("hash")), "document \(index): digest")
            let signature = Secp256k1.sign(digest: hash, with: try PrivateKey(hex: entry.string("privateKey")))
            #expect(Hex.encode(signature.rsv) == (try entry.string("signature")), "document \(index): signature")
        }
        print("eth_signTypedData_v4: \(entries.count) documents")
        #expect(entries.count >= 100)
    }

    @Test func typedDataErrorsNameTheField() throws {
        let document = try JSONParser.parse(
            #"""
            {"types":{"EIP712Domain":[{"name":"name","type":"string"}],"M":[{"name":"n","type":"uint8"}]},
             "primaryType":"M","domain":{"name":"x"},"message":{"n":256}}
            """#)
        let typedData = try TypedData(json: document)
        #expect(throws: TypedDataError.self) { try typedData.signingHash() }
        do {
            _ = try typedData.signingHash()
        } catch {
            #expect(error.description.contains("message.n"))
        }
    }
}
