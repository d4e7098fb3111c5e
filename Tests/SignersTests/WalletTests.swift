import Ethereum
import Foundation
import Logging
import Signers
import TestSupport
import Testing

@Suite struct WalletTests {
    @Test func routesEachAddressToTheBackendThatHoldsIt() async throws {
        let first = PrivateKey.random(), second = PrivateKey.random()
        let backendA = InMemoryBackend(name: "a", keys: [first])
        let backendB = InMemoryBackend(name: "b", keys: [second])
        let wallet = Wallet(
            backends: [backendA, backendB], logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        #expect(await wallet.refresh().isEmpty)
        #expect(Set(wallet.addresses) == [first.address, second.address])
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
        let wallet = Wallet(
            backends: [Flaky(inner: InMemoryBackend(name: "flaky", keys: [key]), failing: { await toggle.failing })],
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        #expect(await wallet.refresh().isEmpty)
        #expect(wallet.addresses == [key.address])
        await toggle.set(true)
        #expect(await wallet.refresh().isEmpty)  // an outage is no configuration problem
        #expect(wallet.addresses == [key.address])
    }

    @Test func anAddressHeldByTwoBackendsStopsTheStartNamingBoth() async throws {
        let shared = PrivateKey.random()
        let wallet = Wallet(
            backends: [InMemoryBackend(name: "hsm", keys: [shared]), InMemoryBackend(name: "kms", keys: [shared])],
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        do {
            try await wallet.run()
            Issue.record("the wallet started with one address in two backends")
        } catch {
            let text = "\(error)"
            #expect(text.contains(shared.address.checksummed) && text.contains("hsm") && text.contains("kms"), "\(text)")
        }
        #expect(wallet.account(for: shared.address)?.backend == "hsm")
    }
}
