import Ethereum
import Foundation
import JSON
import Logging
import Synchronization

/// The embedded backend: a directory of Web3 Secret Storage v3 files, unlocked with one password at start.
///
/// Keys are decrypted once (scrypt is deliberately slow: a second per key) and then held in `PrivateKey`s, whose
/// memory is wiped when they are released; signing is local (~20 µs) and never leaves the process.
public final class KeystoreBackend: KeyBackend {
    public let name: String
    private let directory: String
    private let password: SecretReference
    private let logger: Logger
    private let keys = Mutex<[Address: (key: PrivateKey, account: Account)]>([:])

    public init(name: String = "keystore", directory: String, password: SecretReference, logger: Logger) {
        self.name = name
        self.directory = directory
        self.password = password
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
