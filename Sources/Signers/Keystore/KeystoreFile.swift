import Crypto
import CryptoExtras
import Ethereum
import Foundation
import JSON

/// A Web3 Secret Storage v3 file (geth's and eth-account's keystore format): the private key AES-128-CTR encrypted
/// under a key derived from a password by scrypt or PBKDF2-HMAC-SHA256, with a keccak-256 MAC that tells a wrong
/// password from a corrupt file.
public struct KeystoreFile: Sendable, Hashable {
    public enum KDF: Sendable, Hashable {
        case scrypt(n: Int, r: Int, p: Int)
        case pbkdf2(iterations: Int)

        /// geth's "standard" scrypt (n = 2^18): about a second and 256 MB per decryption.
        public static let standard = KDF.scrypt(n: 1 << 18, r: 8, p: 1)
        /// geth's "light" scrypt (n = 2^12), for throwaway development keys.
        public static let light = KDF.scrypt(n: 1 << 12, r: 8, p: 6)
    }

    public let id: String
    public let address: Address?
    public let kdf: KDF
    let salt: [UInt8]
    let iv: [UInt8]
    let ciphertext: [UInt8]
    let mac: [UInt8]

    // MARK: Reading

    public init(json: JSONValue) throws(SignerError) {
        guard json["version"]?.int64Value == 3 else { throw .keystore("not a version 3 keystore") }
        guard let crypto = json["crypto"] ?? json["Crypto"] else { throw .keystore("missing \"crypto\"") }
        guard crypto["cipher"]?.stringValue == "aes-128-ctr" else {
            throw .keystore("unsupported cipher \(crypto["cipher"]?.stringValue ?? "none") (only aes-128-ctr)")
        }
        func hex(_ value: JSONValue?, _ name: String) throws(SignerError) -> [UInt8] {
            guard let text = value?.stringValue, let bytes = try? Hex.decode(text.hasPrefix("0x") ? text : "0x" + text)
            else {
                throw .keystore("\(name) is not hex")
            }
            return bytes
        }
        iv = try hex(crypto["cipherparams"]?["iv"], "cipherparams.iv")
        guard iv.count == 16 else { throw .keystore("cipherparams.iv must be 16 bytes") }
        ciphertext = try hex(crypto["ciphertext"], "ciphertext")
        guard ciphertext.count == 32 else { throw .keystore("ciphertext must be 32 bytes") }
        mac = try hex(crypto["mac"], "mac")
        let params = crypto["kdfparams"]
        salt = try hex(params?["salt"], "kdfparams.salt")
        guard params?["dklen"]?.int64Value == 32 else { throw .keystore("kdfparams.dklen must be 32") }
        func integer(_ name: String) throws(SignerError) -> Int {
            guard let value = params?[name]?.int64Value, value > 0, value < Int64(Int32.max) else {
                throw .keystore("kdfparams.\(name) missing or out of range")
            }
            return Int(value)
        }
        switch crypto["kdf"]?.stringValue {
        case "scrypt":
            kdf = .scrypt(n: try integer("n"), r: try integer("r"), p: try integer("p"))
        case "pbkdf2":
            guard params?["prf"]?.stringValue == "hmac-sha256" else {
                throw .keystore("pbkdf2 prf must be hmac-sha256")
            }
            kdf = .pbkdf2(iterations: try integer("c"))
        case let other:
            throw .keystore("unsupported kdf \(other ?? "none")")
        }
        id = json["id"]?.stringValue ?? ""
        address = json["address"]?.stringValue.flatMap { try? Address(hex: $0.hasPrefix("0x") ? $0 : "0x" + $0) }
    }

    public init(contentsOf path: String) throws(SignerError) {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw .keystore("cannot read \(path): \(error.localizedDescription)")
        }
        do { try self.init(json: try JSONParser.parse(Array(data))) } catch let error as SignerError {
            throw .keystore("\(path): \(error.description)")
        } catch {
            throw .keystore("\(path): not JSON (\(error))")
        }
    }

    // MARK: Decrypting

    /// The private key, if `password` is right. Intermediate secrets are wiped before returning.
    public func decrypt(password: [UInt8]) throws(SignerError) -> PrivateKey {
        var derived = try deriveKey(password: password)
        defer { Self.wipe(&derived) }
        let expected = Keccak256.hash(derived[16..<32] + ciphertext).bytes
        guard Self.constantTimeEqual(expected, mac) else {
            throw .keystore("wrong password (MAC mismatch)")
        }
        var plaintext = try Self.aesCTR(key: Array(derived[0..<16]), iv: iv, input: ciphertext)
        defer { Self.wipe(&plaintext) }
        let key: PrivateKey
        do { key = try PrivateKey(bytes: plaintext) } catch {
            throw .keystore("decrypted key is not a valid secp256k1 key")
        }
        if let address, address != key.address {
            throw .keystore("decrypted key belongs to \(key.address), not to the file's address \(address)")
        }
        return key
    }

    private func deriveKey(password: [UInt8]) throws(SignerError) -> [UInt8] {
        let symmetric: SymmetricKey
        do {
            switch kdf {
            case .scrypt(let n, let r, let p):
                symmetric = try CryptoExtras.KDF.Scrypt.deriveKey(
                    from: password, salt: salt, outputByteCount: 32, rounds: n, blockSize: r, parallelism: p)
            case .pbkdf2(let iterations):
                symmetric = try CryptoExtras.KDF.Insecure.PBKDF2.deriveKey(
                    from: password, salt: salt, using: .sha256, outputByteCount: 32, unsafeUncheckedRounds: iterations)
            }
        } catch {
            throw .keystore("key derivation failed: \(error)")
        }
        return symmetric.withUnsafeBytes { Array($0) }
    }

    // MARK: Encrypting

    /// Encrypts `key` under `password` with fresh random salt, IV and id.
    public static func encrypt(
        _ key: PrivateKey, password: [UInt8], kdf: KDF = .standard
    ) throws(SignerError) -> KeystoreFile {
        var generator = SystemRandomNumberGenerator()
        let salt = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let iv = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let template = KeystoreFile(
            id: UUID().uuidString.lowercased(), address: key.address, kdf: kdf, salt: salt, iv: iv,
            ciphertext: [], mac: [])
        var derived = try template.deriveKey(password: password)
        defer { wipe(&derived) }
        var secret = key.withUnsafeBytes { Array($0) }
        defer { wipe(&secret) }
        let ciphertext = try aesCTR(key: Array(derived[0..<16]), iv: iv, input: secret)
        let mac = Keccak256.hash(derived[16..<32] + ciphertext).bytes
        return KeystoreFile(
            id: template.id, address: key.address, kdf: kdf, salt: salt, iv: iv, ciphertext: ciphertext, mac: mac)
    }

    private init(id: String, address: Address?, kdf: KDF, salt: [UInt8], iv: [UInt8], ciphertext: [UInt8], mac: [UInt8])
    {
        self.id = id
        self.address = address
        self.kdf = kdf
        self.salt = salt
        self.iv = iv
        self.ciphertext = ciphertext
        self.mac = mac
    }

    public var json: JSONValue {
        func bare(_ bytes: [UInt8]) -> JSONValue { .string(String(Hex.encode(bytes).dropFirst(2))) }
        var params = JSONObject([("dklen", 32), ("salt", bare(salt))])
        let kdfName: String
        switch kdf {
        case .scrypt(let n, let r, let p):
            kdfName = "scrypt"
            params["n"] = .number(n)
            params["r"] = .number(r)
            params["p"] = .number(p)
        case .pbkdf2(let iterations):
            kdfName = "pbkdf2"
            params["c"] = .number(iterations)
            params["prf"] = "hmac-sha256"
        }
        var object = JSONObject()
        if let address { object["address"] = .string(String(address.lowercaseHex.dropFirst(2))) }
        object["crypto"] = [
            "cipher": "aes-128-ctr", "cipherparams": ["iv": bare(iv)], "ciphertext": bare(ciphertext),
            "kdf": .string(kdfName), "kdfparams": .object(params), "mac": bare(mac),
        ]
        object["id"] = .string(id)
        object["version"] = 3
        return .object(object)
    }

    /// geth's file name: `UTC--<time>--<address>`.
    public var suggestedFileName: String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let time = formatter.string(from: Date()).replacingOccurrences(of: ":", with: "-")
        return "UTC--\(time)--\(address.map { String($0.lowercaseHex.dropFirst(2)) } ?? id)"
    }

    // MARK: Helpers

    static func aesCTR(key: [UInt8], iv: [UInt8], input: [UInt8]) throws(SignerError) -> [UInt8] {
        do {
            let output = try AES._CTR.encrypt(
                input, using: SymmetricKey(data: key), nonce: AES._CTR.Nonce(nonceBytes: iv))
            return Array(output)
        } catch {
            throw .keystore("AES-128-CTR failed: \(error)")
        }
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }

    static func wipe(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { _ = $0.initializeMemory(as: UInt8.self, repeating: 0) }
    }
}
