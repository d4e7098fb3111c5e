import Ethereum
import JSON
import Signers
import Testing

@testable import SignersVault

/// What the Vault backend sends to and reads from Vault, checked without a server: Vault's error envelopes, the
/// ethsign sign request, and what it refuses to send.
@Suite struct VaultParsingTests {
    static let to = PrivateKey.random().address

    @Test func vaultErrorEnvelopesKeepTheirMessagesOnOneLine() {
        let plugin = VaultError.reply(
            status: 500,
            body: Array(#"{"errors":["1 error occurred:\n\t* Signing account 0xabc does not exist\n\n"]}"#.utf8),
            retryAfter: nil)
        #expect(plugin.status == 500)
        #expect(plugin.messages == ["Signing account 0xabc does not exist"])
        #expect(!plugin.isRetryable, "the plugin's refusals are 500s that do not change on retry")
        #expect(plugin.description == "HTTP 500: Signing account 0xabc does not exist")

        let denied = VaultError.reply(
            status: 403, body: Array(#"{"errors":["permission denied"]}"#.utf8), retryAfter: nil)
        #expect(denied.messages == ["permission denied"])
        #expect(!denied.isRetryable)

        guard
            case .answer(404, let errors, _) = VaultError.reply(
                status: 404, body: Array(#"{"errors":[]}"#.utf8), retryAfter: nil)
        else {
            Issue.record("not an answer")
            return
        }
        #expect(errors.isEmpty, "a LIST of nothing")

        let sealed = VaultError.reply(
            status: 503, body: Array(#"{"errors":["Vault is sealed"]}"#.utf8), retryAfter: nil)
        #expect(sealed.isRetryable)
        let proxy = VaultError.reply(status: 502, body: Array("upstream error".utf8), retryAfter: .seconds(1))
        #expect(proxy.isRetryable)
        #expect(proxy.retryAfter == .seconds(1))
        #expect(proxy.messages == ["upstream error"])
        #expect(VaultError.reply(status: 429, body: [], retryAfter: nil).isRetryable)
    }

    @Test func aLegacyTransactionIsSentAsHexFields() throws {
        let transaction = Transaction.legacy(
            chainId: 131_277_322_940_537, nonce: 10, gasPrice: 2_000_000_000, gas: 21_000, to: Self.to,
            value: 1_000_000_000_000_000_000, data: [0xde, 0xad])
        let body = try EthsignRequest.body(for: transaction, backend: "vault")
        #expect(body["to"]?.stringValue == Self.to.lowercaseHex)
        #expect(body["data"]?.stringValue == "0xdead")
        #expect(body["value"]?.stringValue == "0xde0b6b3a7640000")
        #expect(body["nonce"]?.stringValue == "0xa")
        #expect(body["gas"]?.stringValue == "0x5208")
        #expect(body["gasPrice"]?.stringValue == "0x77359400")
        #expect(body["chainId"]?.stringValue == "0x776562337079")
    }

    /// The plugin refuses an absent `data` ("empty hex string") and creates a contract for an absent `to`.
    @Test func emptyDataIsSentAs0xAndACreationHasNoTo() throws {
        let creation = Transaction.legacy(chainId: 1, nonce: 0, gasPrice: 1, gas: 100_000, to: nil, value: 0)
        let body = try EthsignRequest.body(for: creation, backend: "vault")
        #expect(body["to"] == nil)
        #expect(body["data"]?.stringValue == "0x")
        #expect(body["value"]?.stringValue == "0x0")
        #expect(body["nonce"]?.stringValue == "0x0")
    }

    @Test func eip1559AndAccessListTransactionsAreRefusedSayingWhatToDo() throws {
        let dynamic = Transaction.dynamicFee(
            chainId: 1, nonce: 0, maxPriorityFeePerGas: 1, maxFeePerGas: 2, gas: 21_000, to: Self.to, value: 1)
        let error = try #require(throws: SignerError.self) { try EthsignRequest.body(for: dynamic, backend: "vault") }
        #expect(error.label == "rejected")
        #expect(error.isPermanent)
        #expect(error.description.contains("EIP-1559"))
        #expect(error.description.contains("legacyForDynamicFee"))
        let accessList = try Transaction(
            type: .accessList, chainId: 1, nonce: 0, fees: .gasPrice(1), gas: 21_000, to: Self.to, value: 1,
            data: [])
        let refused = try #require(throws: SignerError.self) {
            try EthsignRequest.body(for: accessList, backend: "vault")
        }
        #expect(refused.description.contains("EIP-2930"))
    }

    /// Chain id 0 makes the plugin use the Homestead signer: a transaction valid on every chain.
    @Test func chainIDZeroAndNoChainIDAreRefused() throws {
        for chainId: UInt64? in [0, nil] {
            let transaction = try Transaction(
                type: .legacy, chainId: chainId, nonce: 0, fees: .gasPrice(1), gas: 21_000, to: Self.to, value: 1,
                data: [])
            let error = try #require(throws: SignerError.self) {
                try EthsignRequest.body(for: transaction, backend: "vault")
            }
            #expect(error.label == "rejected")
            #expect(error.description.contains("chain id 0"))
        }
    }

    @Test func theSignedTransactionIsReadFromTheEnvelope() throws {
        let answer: JSONValue = [
            "request_id": "x", "lease_id": "", "renewable": false, "lease_duration": 0,
            "data": ["signed_transaction": "0xf86c0a85", "transaction_hash": "0x00"], "wrap_info": nil,
            "warnings": nil, "auth": nil,
        ]
        #expect(try EthsignRequest.signedTransaction(from: answer, backend: "vault") == [0xf8, 0x6c, 0x0a, 0x85])
        #expect(throws: SignerError.self) {
            try EthsignRequest.signedTransaction(from: ["data": ["transaction_hash": "0x00"]], backend: "vault")
        }
        #expect(throws: SignerError.self) { try EthsignRequest.signedTransaction(from: nil, backend: "vault") }
    }

    @Test func addressesAreOriginsOnly() throws {
        #expect(
            HashiCorpVaultBackend.Address("https://vault.example.com:8200/")?.origin == "https://vault.example.com:8200"
        )
        #expect(HashiCorpVaultBackend.Address("http://127.0.0.1:8200")?.origin == "http://127.0.0.1:8200")
        #expect(HashiCorpVaultBackend.Address("https://vault.example.com/v1") == nil)
        #expect(HashiCorpVaultBackend.Address("ftp://vault") == nil)
    }
}
