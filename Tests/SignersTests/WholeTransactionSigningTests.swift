import Ethereum
import Logging
import Signers
import TestSupport
import Testing

/// Backends that sign whole transactions (the Vault ethsign plugin) are handed the fields, and what they return is
/// used only if it is exactly the requested transaction, signed by the account.
@Suite struct WholeTransactionSigningTests {
    static let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
    static let key = PrivateKey.random()
    static let transaction = Transaction.dynamicFee(
        chainId: 1337, nonce: 7, maxPriorityFeePerGas: 1_000_000_000, maxFeePerGas: 2_000_000_000, gas: 21_000,
        to: PrivateKey.random().address, value: 12_345)

    static func wallet(_ backend: InMemoryBackend) async -> Wallet {
        let wallet = Wallet(backends: [backend], logger: logger)
        _ = await wallet.refresh()
        return wallet
    }

    /// What the wallet throws when `backend` is asked to sign `transaction` for the account.
    static func refusal(_ backend: InMemoryBackend) async throws -> SignerError {
        let wallet = await wallet(backend)
        return try await #require(throws: SignerError.self) {
            try await wallet.sign(transaction: Self.transaction, from: Self.key.address)
        }
    }

    @Test func aFaithfulBackendsTransactionIsUsedAsItIs() async throws {
        let backend = InMemoryBackend(keys: [Self.key], signingForm: .transaction)
        let wallet = await Self.wallet(backend)
        let signed = try await wallet.sign(transaction: Self.transaction, from: Self.key.address)
        #expect(signed.transaction == Self.transaction)
        #expect(try signed.sender() == Self.key.address)
        #expect(signed.raw == Self.transaction.signed(with: Self.key).raw)
        #expect(backend.signatureCount == 1)
    }

    @Test(arguments: ["value", "recipient", "nonce", "chain"])
    func aBackendThatChangesAFieldIsRefused(field: String) async throws {
        let backend = InMemoryBackend(keys: [Self.key], signingForm: .transaction) { requested in
            var changed = requested
            switch field {
            case "value": changed.value = requested.value + 1
            case "recipient": changed.to = PrivateKey.random().address
            case "nonce": changed.nonce += 1
            default: changed.chainId = 1
            }
            return changed
        }
        let error = try await Self.refusal(backend)
        #expect(error.label == "invalid_signature")
        #expect(error.description.contains("other fields than requested"))
    }

    @Test func aTransactionSignedByAnotherKeyIsRefused() async throws {
        let backend = InMemoryBackend(keys: [Self.key], impostor: PrivateKey.random(), signingForm: .transaction)
        let error = try await Self.refusal(backend)
        #expect(error.label == "invalid_signature")
        #expect(error.description.contains("recovers to"))
    }

    /// Such a backend cannot sign a message: a clear refusal, not a signature over the wrong thing.
    @Test func messagesAreRefusedClearly() async throws {
        let wallet = await Self.wallet(InMemoryBackend(keys: [Self.key], signingForm: .transaction))
        let error = try await #require(throws: SignerError.self) {
            try await wallet.sign(digest: Keccak256.hash([1]), from: Self.key.address)
        }
        #expect(error.isPermanent)
        #expect(error.description.contains("signs only whole transactions"))
        #expect(throws: SignerError.self) { try wallet.signNow(digest: Keccak256.hash([1]), from: Self.key.address) }
    }

    /// Digest backends go on signing transactions by digest, the encoding made by the gateway.
    @Test func digestBackendsSignTheGatewaysEncoding() async throws {
        let backend = InMemoryBackend(keys: [Self.key], latency: .milliseconds(1))
        let wallet = await Self.wallet(backend)
        let signed = try await wallet.sign(transaction: Self.transaction, from: Self.key.address)
        #expect(signed.transaction == Self.transaction)
        #expect(try signed.sender() == Self.key.address)
    }
}
