import Ethereum
import Foundation
import Logging
import Signers
import TestSupport
import Testing

@Suite struct KeystoreTests {
    static func temporaryDirectory() -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("keystore-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test(arguments: [KeystoreFile.KDF.light, .pbkdf2(iterations: 1_000)])
    func roundTrip(kdf: KeystoreFile.KDF) throws {
        let key = PrivateKey.random()
        let file = try KeystoreFile.encrypt(key, password: Array("secret".utf8), kdf: kdf)
        let parsed = try KeystoreFile(json: file.json)
        #expect(parsed.address == key.address)
        #expect(try parsed.decrypt(password: Array("secret".utf8)).address == key.address)
        #expect(throws: SignerError.self) { try parsed.decrypt(password: Array("wrong".utf8)) }
    }

    /// eth-account (Python) writes, we read — and we write, eth-account reads.
    @Test func backendUnlocksADirectoryAndSkipsBadFiles() async throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let keys = (0..<3).map { _ in PrivateKey.random() }
        for key in keys { _ = try KeystoreBackend.write(key, password: Array("pw".utf8), kdf: .light, to: directory) }
        FileManager.default.createFile(atPath: directory + "/notes.txt", contents: Data("hello".utf8))
        _ = try KeystoreBackend.write(PrivateKey.random(), password: Array("other".utf8), kdf: .light, to: directory)
        setenv("KEYSTORE_TEST_PASSWORD", "pw", 1)
        let backend = KeystoreBackend(
            directory: directory, password: SecretReference("env:KEYSTORE_TEST_PASSWORD"),
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        let accounts = try await backend.accounts()
        #expect(Set(accounts.map(\.address)) == Set(keys.map(\.address)))
        let digest = Keccak256.hash([7])
        let signature = try await backend.sign(digest: digest, for: accounts[0])
        #expect(try Secp256k1.recoverAddress(digest: digest, signature: signature) == accounts[0].address)
    }

    /// The keystore held to the rules every backend is (`BackendConformance`).
    @Test func conformance() async throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let keys = (0..<3).map { _ in PrivateKey.random() }
        for key in keys { _ = try KeystoreBackend.write(key, password: Array("pw".utf8), kdf: .light, to: directory) }
        let backend = KeystoreBackend(
            name: "files", directory: directory, password: SecretReference("pw"),
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        try await BackendConformance(backend).holds(Set(keys.map(\.address)))
    }

    @Test func secretsPrintAsReferencesOnly() {
        #expect(SecretReference("env:PW").description == "env:PW")
        #expect(SecretReference("file:/run/secrets/pw").description == "file:/run/secrets/pw")
        #expect(SecretReference("hunter2").description == "<redacted>")
    }

    /// Keys made and imported through the gateway are files in the directory, encrypted with its password; a deleted
    /// one moves to `.deleted/`, out of the listing.
    @Test func createsImportsAndDeletesKeys() async throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        _ = try KeystoreBackend.write(PrivateKey.random(), password: Array("pw".utf8), kdf: .light, to: directory)
        let created = try await KeyManagementConformance {
            KeystoreBackend(
                directory: directory, password: .literal("pw"), newKeyKDF: .light,
                logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        }.createsSignsAndDeletes(imports: true)
        let trash = (directory as NSString).appendingPathComponent(".deleted")
        let moved = try FileManager.default.contentsOfDirectory(atPath: trash)
        #expect(moved == [created.keyReference])
        let file = try KeystoreFile(contentsOf: (trash as NSString).appendingPathComponent(moved[0]))
        #expect(try file.decrypt(password: Array("pw".utf8)).address == created.address)
    }
}
