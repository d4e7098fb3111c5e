import Ethereum
import Foundation
import Logging
import Signers
import Testing
import TestSupport

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
    @Test(arguments: ["scrypt", "pbkdf2"])
    func interoperatesWithEthAccount(kdf: String) async throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let written = try await ClientScenario.run("keystore_interop.py", [
            "encrypt", "--dir", directory, "--password", "pass word", "--count", "2", "--kdf", kdf, "--light",
        ])
        #expect(written.exitCode == 0, "\(written.diagnostics)")
        let accounts = written.result?["accounts"] as? [[String: Any]] ?? []
        #expect(accounts.count == 2)
        for account in accounts {
            let file = try KeystoreFile(contentsOf: account["file"] as? String ?? "")
            let key = try file.decrypt(password: Array("pass word".utf8))
            #expect(key.address.checksummed == account["address"] as? String)
        }

        let ours = PrivateKey.random()
        let path = try KeystoreBackend.write(ours, password: Array("pass word".utf8),
                                             kdf: kdf == "scrypt" ? .light : .pbkdf2(iterations: 1_000), to: directory)
        let read = try await ClientScenario.run("keystore_interop.py", ["decrypt", "--file", path, "--password", "pass word"])
        #expect(read.exitCode == 0, "\(read.diagnostics)")
        #expect(read.result?["address"] as? String == ours.address.checksummed)
        #expect(read.result?["kdf"] as? String == kdf)
        let wrong = try await ClientScenario.run("keystore_interop.py", ["decrypt", "--file", path, "--password", "nope"])
        #expect(wrong.exitCode != 0)
    }

    @Test func backendUnlocksADirectoryAndSkipsBadFiles() async throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let keys = (0..<3).map { _ in PrivateKey.random() }
        for key in keys { _ = try KeystoreBackend.write(key, password: Array("pw".utf8), kdf: .light, to: directory) }
        FileManager.default.createFile(atPath: directory + "/notes.txt", contents: Data("hello".utf8))
        _ = try KeystoreBackend.write(PrivateKey.random(), password: Array("other".utf8), kdf: .light, to: directory)
        setenv("KEYSTORE_TEST_PASSWORD", "pw", 1)
        let backend = KeystoreBackend(directory: directory, password: SecretReference("env:KEYSTORE_TEST_PASSWORD"),
                                      logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        let accounts = try await backend.accounts()
        #expect(Set(accounts.map(\.address)) == Set(keys.map(\.address)))
        let digest = Keccak256.hash([7])
        let signature = try await backend.sign(digest: digest, for: accounts[0])
        #expect(try Secp256k1.recoverAddress(digest: digest, signature: signature) == accounts[0].address)
    }

    @Test func secretsPrintAsReferencesOnly() {
        #expect(SecretReference("env:PW").description == "env:PW")
        #expect(SecretReference("file:/run/secrets/pw").description == "file:/run/secrets/pw")
        #expect(SecretReference("hunter2").description == "<redacted>")
    }
}

@Suite struct WalletTests {
    @Test func routesEachAddressToTheBackendThatHoldsIt() async throws {
        let first = PrivateKey.random(), second = PrivateKey.random()
        let backendA = InMemoryBackend(name: "a", keys: [first])
        let backendB = InMemoryBackend(name: "b", keys: [second, first])  // duplicate: the first backend wins
        let wallet = Wallet(backends: [backendA, backendB], logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        #expect(Set(await wallet.refresh()) == [first.address, second.address])
        #expect(wallet.account(for: first.address)?.backend == "a")
        #expect(wallet.account(for: second.address)?.backend == "b")
        let digest = Keccak256.hash([1])
        _ = try await wallet.sign(digest: digest, from: second.address)
        #expect(backendB.signatureCount == 1 && backendA.signatureCount == 0)
        let stranger = PrivateKey.random().address
        await #expect(throws: SignerError.unknownAccount(stranger.checksummed)) {
            _ = try await wallet.sign(digest: digest, from: stranger)
        }
    }

    @Test func aFailingBackendKeepsItsAccountsOnRefresh() async throws {
        actor Toggle { var failing = false; func set(_ value: Bool) { failing = value } }
        struct Flaky: KeyBackend {
            let name = "flaky"
            let inner: InMemoryBackend
            let failing: @Sendable () async -> Bool
            func accounts() async throws(SignerError) -> [Account] {
                if await failing() { throw .backendUnavailable("down") }
                return try await inner.accounts()
            }
            func sign(digest: Bytes32, for account: Account) async throws(SignerError) -> Signature {
                try await inner.sign(digest: digest, for: account)
            }
        }
        let toggle = Toggle()
        let key = PrivateKey.random()
        let wallet = Wallet(backends: [Flaky(inner: InMemoryBackend(name: "flaky", keys: [key]), failing: { await toggle.failing })],
                            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        #expect(await wallet.refresh() == [key.address])
        await toggle.set(true)
        #expect(await wallet.refresh() == [key.address])
    }
}
