import Ethereum
import Foundation
import Logging
import Signers
import TestSupport
import Testing

/// Keystore files are interchangeable with eth-account's (Python, from the clients' virtualenv), both ways.
@Suite(.tags(.live)) struct KeystoreInteropLiveTests {
    @Test(arguments: ["scrypt", "pbkdf2"])
    func interoperatesWithEthAccount(kdf: String) async throws {
        let directory = KeystoreTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let written = try await ClientScenario.run(
            "keystore_interop.py",
            [
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
        let path = try KeystoreBackend.write(
            ours, password: Array("pass word".utf8),
            kdf: kdf == "scrypt" ? .light : .pbkdf2(iterations: 1_000), to: directory)
        let read = try await ClientScenario.run(
            "keystore_interop.py", ["decrypt", "--file", path, "--password", "pass word"])
        #expect(read.exitCode == 0, "\(read.diagnostics)")
        #expect(read.result?["address"] as? String == ours.address.checksummed)
        #expect(read.result?["kdf"] as? String == kdf)
        let wrong = try await ClientScenario.run(
            "keystore_interop.py", ["decrypt", "--file", path, "--password", "nope"])
        #expect(wrong.exitCode != 0)
    }
}
