import Ethereum
import Foundation
import JSON
import Logging
import Synchronization

/// The embedded backend: a directory of Web3 Secret Storage v3 files, unlocked with one password at start.
///
/// Keys are decrypted once (scrypt is deliberately slow: a second per key) and then held in `PrivateKey`s, whose
/// memory is wiped when they are released; signing is local (~20 µs) and never leaves the process.
public final class KeystoreBackend: KeyManagingBackend {
    public let name: String
    private let directory: String
    private let password: SecretReference
    /// How the files of keys created or imported through the gateway are encrypted.
    private let newKeyKDF: KeystoreFile.KDF
    private let logger: Logger
    private let keys = Mutex<[Address: (key: PrivateKey, account: Account)]>([:])

    public init(
        name: String = "keystore", directory: String, password: SecretReference,
        newKeyKDF: KeystoreFile.KDF = .standard, logger: Logger
    ) {
        self.name = name
        self.directory = directory
        self.password = password
        self.newKeyKDF = newKeyKDF
        self.logger = logger
    }

    /// Decrypts every keystore file in the directory not yet unlocked. Files that fail are reported, not fatal.
    public func accounts() async throws(SignerError) -> [Account] {
        let files: [String]
        do {
            files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { !$0.hasPrefix(".") }
                .sorted()
        } catch {
            throw .configuration("cannot list keystore directory \(directory): \(error.localizedDescription)")
        }
        var secret = try password.resolve()
        defer { KeystoreFile.wipe(&secret) }
        for file in files {
            let path = (directory as NSString).appendingPathComponent(file)
            do {
                let keystore = try KeystoreFile(contentsOf: path)
                if let address = keystore.address, keys.withLock({ $0[address] != nil }) { continue }
                let key = try keystore.decrypt(password: secret)
                let account = Account(publicKey: key.publicKey, backend: name, keyReference: file)
                keys.withLock { $0[account.address] = (key, account) }
            } catch {
                logger.warning(
                    "skipping keystore file",
                    metadata: [
                        "signer.backend": "\(name)", "keystore.file": "\(file)",
                        "error": "\(error)",
                    ])
            }
        }
        return keys.withLock { $0.values.map(\.account).sorted { $0.address < $1.address } }
    }

    public func sign(digest: Bytes32, for account: Account) async throws(SignerError) -> Signature {
        try signNow(digest: digest, for: account)!
    }

    /// Local keys sign in microseconds: no reason to leave the caller's thread.
    public func signNow(digest: Bytes32, for account: Account) throws(SignerError) -> Signature? {
        guard let key = keys.withLock({ $0[account.address]?.key }) else {
            throw .unknownAccount(account.address.checksummed)
        }
        return Secp256k1.sign(digest: digest, with: key)
    }

    // MARK: Key management

    public func createAccount(label: String?) async throws(SignerError) -> Account {
        try await importAccount(PrivateKey.random(), label: label)
    }

    /// Encrypts `key` with the backend's password into a new file of the directory, named as geth names them.
    public func importAccount(_ key: PrivateKey, label: String?) async throws(SignerError) -> Account {
        if keys.withLock({ $0[key.address] != nil }) {
            throw .keyManagement("\(name) already holds \(key.address.checksummed)")
        }
        var secret = try password.resolve()
        defer { KeystoreFile.wipe(&secret) }
        let path = try Self.write(key, password: secret, kdf: newKeyKDF, to: directory)
        let account = Account(
            publicKey: key.publicKey, backend: name, keyReference: (path as NSString).lastPathComponent)
        keys.withLock { $0[account.address] = (key, account) }
        return account
    }

    /// Moves the file into `.deleted/` inside the directory (listing skips hidden names): the key stops signing at
    /// once, and an operator who deleted the wrong account can still move the encrypted file back.
    public func deleteAccount(_ account: Account) async throws(SignerError) {
        guard let held = keys.withLock({ $0[account.address]?.account }) else {
            throw .unknownAccount(account.address.checksummed)
        }
        let trash = (directory as NSString).appendingPathComponent(".deleted")
        let source = (directory as NSString).appendingPathComponent(held.keyReference)
        let target = (trash as NSString).appendingPathComponent(held.keyReference)
        do {
            try FileManager.default.createDirectory(
                atPath: trash, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            try FileManager.default.moveItem(atPath: source, toPath: target)
        } catch {
            throw .keyManagement("\(name): cannot move \(held.keyReference) out of the keystore: \(error.localizedDescription)")
        }
        _ = keys.withLock { $0.removeValue(forKey: account.address) }
    }

    /// Writes a new keystore file for `key` into `directory`; returns its path.
    public static func write(
        _ key: PrivateKey, password: [UInt8], kdf: KeystoreFile.KDF = .standard,
        to directory: String
    ) throws(SignerError) -> String {
        let file = try KeystoreFile.encrypt(key, password: password, kdf: kdf)
        let path = (directory as NSString).appendingPathComponent(file.suggestedFileName)
        do {
            try FileManager.default.createDirectory(
                atPath: directory, withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700])
            let data = Data(JSONWriter.bytes(file.json))
            guard FileManager.default.createFile(atPath: path, contents: data, attributes: [.posixPermissions: 0o600])
            else {
                throw SignerError.keystore("cannot create \(path)")
            }
        } catch let error as SignerError {
            throw error
        } catch {
            throw .keystore("cannot write \(path): \(error.localizedDescription)")
        }
        return path
    }
}
