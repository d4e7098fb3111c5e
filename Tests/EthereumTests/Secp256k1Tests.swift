import Ethereum
import Testing

@Suite struct Secp256k1Tests {
    let key = try! PrivateKey(hex: "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")

    @Test func signaturesAreLowSAndRecover() throws {
        for index in 0..<200 {
            let digest = Keccak256.hash(Array("message \(index)".utf8))
            let signature = Secp256k1.sign(digest: digest, with: key)
            #expect(signature.s <= Secp256k1.halfOrder)
            #expect(try Secp256k1.recoverAddress(digest: digest, signature: signature) == key.address)
        }
    }

    /// What a remote backend hands back: r and s without v, s high about half of the time. Folding s and finding v
    /// by trial must give back exactly the signature libsecp256k1 makes.
    @Test func bareRSFromABackendBecomesACanonicalSignature() throws {
        for index in 0..<100 {
            let digest = Keccak256.hash(Array("backend \(index)".utf8))
            let reference = Secp256k1.sign(digest: digest, with: key)
            let highS = Secp256k1.order - reference.s
            for s in [reference.s, highS] {
                let recovered = try Secp256k1.signature(r: reference.r, s: s, digest: digest, publicKey: key.publicKey)
                #expect(recovered == reference)
            }
        }
    }

    @Test func aSignatureFromAnotherKeyIsRefused() throws {
        let other = try PrivateKey(hex: "0x0000000000000000000000000000000000000000000000000000000000000002")
        let digest = Keccak256.hash([1, 2, 3])
        let signature = Secp256k1.sign(digest: digest, with: other)
        #expect(throws: Secp256k1Error.signatureDoesNotMatchKey) {
            try Secp256k1.signature(r: signature.r, s: signature.s, digest: digest, publicKey: key.publicKey)
        }
    }

    @Test func derAndCompactParsing() throws {
        let digest = Keccak256.hash([9])
        let signature = Secp256k1.sign(digest: digest, with: key)
        // DER: SEQUENCE { INTEGER r, INTEGER s } with a 0x00 pad when the high bit is set.
        func derInteger(_ value: UInt256) -> [UInt8] {
            var bytes = value.minimalBigEndianBytes
            if bytes.first! >= 0x80 { bytes.insert(0, at: 0) }
            return [0x02, UInt8(bytes.count)] + bytes
        }
        let body = derInteger(signature.r) + derInteger(signature.s)
        let der = [0x30, UInt8(body.count)] + body
        let parsed = try Secp256k1.parseDER(der)
        #expect(parsed.r == signature.r && parsed.s == signature.s)
        #expect(throws: Secp256k1Error.invalidDER) { try Secp256k1.parseDER(der.dropLast()) }
        let compact = try Secp256k1.parseCompact(signature.compact)
        #expect(compact.r == signature.r && compact.s == signature.s)
    }

    @Test func publicKeyForms() throws {
        let uncompressed = key.publicKey.uncompressed
        #expect(uncompressed.count == 65 && uncompressed[0] == 4)
        #expect(try PublicKey(bytes: uncompressed.dropFirst()) == key.publicKey)
        #expect(throws: Secp256k1Error.invalidPublicKey) { try PublicKey(bytes: [UInt8](repeating: 1, count: 64)) }
        #expect(throws: Secp256k1Error.invalidPrivateKey) {
            try PrivateKey(hex: "0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141")
        }
        #expect(throws: Secp256k1Error.invalidPrivateKey) { try PrivateKey(bytes: [UInt8](repeating: 0, count: 32)) }
    }
}
