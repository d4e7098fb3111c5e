import Ethereum
import Foundation
import Logging
import Signers
import SignersVault
import TestSupport
import Testing

/// The Vault backend against Tools/vault: a real OpenBao dev server (tokens, policies, AppRole, renewal, namespaces,
/// KV v2) with the ethsign plugin's API served in front of it exactly as the plugin's Go code serves it, authorised
/// by OpenBao's own ACLs. Transactions signed by the plugin go through the wallet, which decodes each raw
/// transaction and holds it to the request.
@Suite(.tags(.live)) struct VaultBackendLiveTests {
    static let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
    static let chainID: UInt64 = 131_277_322_940_537

    static func backend(
        _ server: VaultServer, _ authentication: VaultAuthentication, name: String = "vault",
        logger: Logger = logger, configure: (inout HashiCorpVaultBackend.Settings) -> Void = { _ in }
    ) -> HashiCorpVaultBackend {
        var settings = HashiCorpVaultBackend.Settings(
            address: HashiCorpVaultBackend.Address(server.address)!, authentication: authentication)
        settings.tls.caFile = server.ca
        configure(&settings)
        return HashiCorpVaultBackend(name: name, settings: settings, logger: logger)
    }

    static func addresses(_ accounts: [String]) throws -> Set<Address> {
        Set(try accounts.map { try Address(hex: $0) })
    }

    static func transaction(nonce: UInt64, chainID: UInt64 = chainID) -> Transaction {
        Transaction.legacy(
            chainId: chainID, nonce: nonce, gasPrice: UInt256(1_000_000_000 + nonce), gas: 21_000 + nonce,
            to: PrivateKey.random().address, value: UInt256(nonce * 1_000), data: nonce % 2 == 0 ? [] : [0xca, 0xfe])
    }

    /// `count` transactions over `accounts`, all in flight at once, each decoded by the wallet, held to the request
    /// and recovered to its account.
    static func signsConcurrently(_ wallet: Wallet, _ accounts: [Address], count: Int) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<count {
                let from = accounts[index % accounts.count]
                let transaction = Self.transaction(nonce: UInt64(index))
                group.addTask {
                    let signed = try await wallet.sign(transaction: transaction, from: from)
                    guard signed.transaction == transaction, try signed.sender() == from else {
                        throw TestSupportError("the plugin signed something else for \(from)")
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    static func wallet(_ backend: HashiCorpVaultBackend) async throws -> Wallet {
        let wallet = Wallet(backends: [backend], logger: logger)
        if let problem = await wallet.refresh().first { throw problem }
        return wallet
    }

    /// With a token holding the user policy alone (list on accounts, create and read on accounts/*): every account
    /// listed by address, 60 transactions signed at once, an account the plugin does not hold refused as unknown.
    @Test func conformanceWithTheUserPolicyAlone() async throws {
        let server = try await VaultServer.start()
        defer { server.stop() }
        let imported = PrivateKey.random()
        let hex = imported.withUnsafeBytes { Hex.encode($0).dropFirst(2) }
        let setup = try await server.setUpEthsign(count: 2, importing: [String(hex)])
        #expect(setup.accounts.first == imported.address.lowercaseHex)
        #expect(setup.userPolicy.contains(#"capabilities = ["list"]"#))
        #expect(setup.userPolicy.contains(#"capabilities = ["create", "read"]"#))
        let backend = Self.backend(server, .token(.literal(setup.userToken)))
        #expect(backend.signingForm == .transaction)
        let (_, accounts) = try await BackendConformance.listing(backend, are: Self.addresses(setup.accounts))
        #expect(accounts.allSatisfy { $0.publicKey == nil && $0.keyReference == $0.address.lowercaseHex })
        let wallet = try await Self.wallet(backend)
        try await Self.signsConcurrently(wallet, accounts.map(\.address), count: 60)

        // The plugin holds no such account: "unknown account" (asked of Vault's listing, not read from a message).
        let stranger = Account(address: PrivateKey.random().address, backend: backend.name, keyReference: "x")
        let error = try await #require(throws: SignerError.self) {
            try await backend.sign(transaction: Self.transaction(nonce: 1), for: stranger)
        }
        #expect(error.label == "unknown_account")

        // The admin-only paths were never needed: the same token cannot export a key or create an account.
        let export = try await TestHTTP.send(
            .GET, "\(server.address)/v1/\(setup.mount)/export/accounts/\(setup.accounts[0])",
            headers: [("X-Vault-Token", setup.userToken)])
        #expect(export.status == 403)
        let create = try await TestHTTP.postJSON(
            "\(server.address)/v1/\(setup.mount)/accounts", [:], headers: [("X-Vault-Token", setup.userToken)])
        #expect(create.status == 403)
    }

    /// Messages and typed data cannot be signed by the plugin: a clear refusal, not a wrong signature.
    @Test func digestsAreRefused() async throws {
        let server = try await VaultServer.start()
        defer { server.stop() }
        let setup = try await server.setUpEthsign(count: 1)
        let backend = Self.backend(server, .token(.literal(setup.userToken)))
        let wallet = try await Self.wallet(backend)
        let address = try Address(hex: setup.accounts[0])
        #expect(wallet.signsWholeTransactions(address))
        let error = try await #require(throws: SignerError.self) {
            try await wallet.sign(digest: Bytes32(Array(repeating: 1, count: 32))!, from: address)
        }
        #expect(error.description.contains("whole transactions"))
    }

    /// EIP-1559 and chain id 0 never reach the plugin: each is refused, saying why, and nothing is signed.
    @Test func eip1559AndChainIDZeroAreRefusedClearly() async throws {
        let server = try await VaultServer.start()
        defer { server.stop() }
        let setup = try await server.setUpEthsign(count: 1)
        let backend = Self.backend(server, .token(.literal(setup.userToken))) { $0.legacyForDynamicFee = true }
        #expect(backend.transactionSupport == .legacyOnly(dynamicFeeAsLegacy: true))
        let wallet = try await Self.wallet(backend)
        let address = try Address(hex: setup.accounts[0])
        let dynamic = Transaction.dynamicFee(
            chainId: Self.chainID, nonce: 0, maxPriorityFeePerGas: 1, maxFeePerGas: 2, gas: 21_000,
            to: PrivateKey.random().address, value: 1)
        let refused = try await #require(throws: SignerError.self) {
            try await wallet.sign(transaction: dynamic, from: address)
        }
        #expect(refused.label == "rejected" && refused.isPermanent)
        #expect(refused.description.contains("EIP-1559"))
        let zero = try await #require(throws: SignerError.self) {
            try await wallet.sign(transaction: Self.transaction(nonce: 0, chainID: 0), from: address)
        }
        #expect(zero.label == "rejected")
        #expect(zero.description.contains("chain id 0"))
        // And a legacy one with a chain id signs.
        try await Self.signsConcurrently(wallet, [address], count: 1)
    }

    /// AppRole: the login's token (TTL 4 s, max 9 s) is renewed before it runs out and replaced by a new login once
    /// renewal is capped by the max TTL: signatures go on for more than two max TTLs, and none of them ever meets a
    /// refused token (recovering by a login after a 403 would hide a renewal that came too late).
    @Test func appRoleTokensAreRenewedAndReplaced() async throws {
        let server = try await VaultServer.start()
        defer { server.stop() }
        let setup = try await server.setUpEthsign(count: 2, tokenTTL: "4s", tokenMaxTTL: "9s")
        let logs = RecordingLogHandler()
        let backend = Self.backend(
            server, .appRole(roleID: .literal(setup.roleID), secretID: .literal(setup.secretID), mount: "approle"),
            logger: Logger(label: "test") { _ in logs })
        let wallet = try await Self.wallet(backend)
        let addresses = try setup.accounts.map { try Address(hex: $0) }
        let started = ContinuousClock.now
        var nonce: UInt64 = 0
        let logins = { logs.lines.filter { $0.contains("logging in again") }.count }
        // Two max TTLs (18 s) and more, until two new logins happened: a loaded machine stretches the schedule.
        func running() -> Bool {
            let elapsed = ContinuousClock.now - started
            return elapsed < .seconds(20) || (logins() < 2 && elapsed < .seconds(60))
        }
        while running() {
            let signed = try await wallet.sign(
                transaction: Self.transaction(nonce: nonce), from: addresses[Int(nonce) % addresses.count])
            #expect(try signed.sender() == addresses[Int(nonce) % addresses.count])
            nonce += 1
            try await Task.sleep(for: .milliseconds(300))
        }
        #expect(logins() >= 2, "a new login per max TTL")
        #expect(!logs.lines.contains { $0.contains("refused the token") }, "\(logs.lines)")
    }

    /// A given token with a short TTL: the backend's `Service` renews it while the gateway is idle. Without it, the
    /// same pause kills the token, and only the operator can give a new one (a configuration error says so).
    @Test func theServiceRenewsAGivenTokenWhileIdle() async throws {
        let server = try await VaultServer.start()
        defer { server.stop() }
        let setup = try await server.setUpEthsign(count: 1)
        let address = try Address(hex: setup.accounts[0])

        // 8 s tokens, renewed by the service after two thirds of their life: seconds of slack on a loaded machine.
        let keptToken = try await server.createToken(policies: [setup.userPolicyName], ttl: "8s")
        let kept = Self.backend(server, .token(.literal(keptToken)))
        let keptWallet = try await Self.wallet(kept)
        let service = Task { try await kept.run() }
        let idleToken = try await server.createToken(policies: [setup.userPolicyName], ttl: "8s")
        let idle = Self.backend(server, .token(.literal(idleToken)))
        let idleWallet = try await Self.wallet(idle)
        try await Task.sleep(for: .seconds(14))

        try await Self.signsConcurrently(keptWallet, [address], count: 2)
        let error = try await #require(throws: SignerError.self) {
            try await idleWallet.sign(transaction: Self.transaction(nonce: 1), from: address)
        }
        #expect(error.isConfiguration)
        #expect(error.description.contains("does not accept the token"))
        service.cancel()
        _ = try? await service.value
    }

    /// A token revoked under the backend: an AppRole backend logs in again and the call goes through.
    @Test func aRevokedAppRoleTokenIsReplacedByANewLogin() async throws {
        let server = try await VaultServer.start()
        defer { server.stop() }
        let setup = try await server.setUpEthsign(count: 1)
        let backend = Self.backend(
            server, .appRole(roleID: .literal(setup.roleID), secretID: .literal(setup.secretID), mount: "approle"))
        let wallet = try await Self.wallet(backend)
        let address = try Address(hex: setup.accounts[0])
        try await Self.signsConcurrently(wallet, [address], count: 1)
        // Revoke every token AppRole has issued: an operator's "log everyone out".
        let revoked = try await TestHTTP.send(
            .PUT, "\(server.address)/v1/sys/leases/revoke-prefix/auth/approle/login",
            headers: [("X-Vault-Token", server.rootToken)])
        #expect(revoked.status == 204, "\(revoked.text)")
        try await Self.signsConcurrently(wallet, [address], count: 3)
    }

    /// Accounts in a namespace are reached with X-Vault-Namespace; without it the namespace's token is not valid.
    @Test func namespaces() async throws {
        let server = try await VaultServer.start()
        defer { server.stop() }
        let setup = try await server.setUpEthsign(namespace: "team-a/payments", count: 2)
        let backend = Self.backend(
            server, .appRole(roleID: .literal(setup.roleID), secretID: .literal(setup.secretID), mount: "approle")
        ) { $0.namespace = "team-a/payments" }
        let accounts = try await BackendConformance(backend).accounts(are: Self.addresses(setup.accounts))
        try await Self.signsConcurrently(try await Self.wallet(backend), accounts.map(\.address), count: 6)

        let outside = Self.backend(server, .token(.literal(setup.userToken)), name: "vault-root-namespace")
        try await BackendConformance.refusesToList(outside, naming: "vault-root-namespace")
    }

    /// A token whose policy does not cover the plugin: a configuration error that says which capabilities it needs.
    @Test func permissionDeniedSaysWhatThePolicyNeeds() async throws {
        let server = try await VaultServer.start()
        defer { server.stop() }
        _ = try await server.setUpEthsign(count: 1)
        let kv = try await server.setUpKV()
        let narrow = Self.backend(server, .token(.literal(kv.token)))
        let error = try await BackendConformance.refusesToList(narrow, naming: "permission denied")
        #expect(error.description.contains("list on ethereum/accounts"))
    }

    /// An account deleted by an admin while the gateway holds it: its signatures fail as "unknown account".
    @Test func aDeletedAccountIsAnUnknownAccount() async throws {
        let server = try await VaultServer.start()
        defer { server.stop() }
        let setup = try await server.setUpEthsign(count: 2)
        let backend = Self.backend(server, .token(.literal(setup.userToken)))
        let accounts = try await BackendConformance(backend).accounts(are: Self.addresses(setup.accounts))
        let deleted = try #require(accounts.first { $0.address.lowercaseHex == setup.accounts[0] })
        try await server.deleteAccount(setup.accounts[0], adminToken: setup.adminToken)
        let error = try await #require(throws: SignerError.self) {
            try await backend.sign(transaction: Self.transaction(nonce: 0), for: deleted)
        }
        #expect(error.label == "unknown_account")
        #expect(try await backend.accounts().map(\.address.lowercaseHex) == [setup.accounts[1]])
    }

    /// Vault stops answering (the stack stopped): retryable errors within the request timeout, signatures again
    /// once it answers.
    @Test func survivesVaultGoingSilentAndComingBack() async throws {
        let server = try await VaultServer.start()
        defer { server.stop() }
        let setup = try await server.setUpEthsign(count: 1)
        let backend = Self.backend(server, .token(.literal(setup.userToken))) { settings in
            settings.requestTimeout = .seconds(2)
            settings.retry.maximumRetries = 1
        }
        let wallet = try await Self.wallet(backend)
        let address = try Address(hex: setup.accounts[0])
        try await Self.signsConcurrently(wallet, [address], count: 1)
        let account = try #require(wallet.account(for: address))
        kill(server.pid, SIGSTOP)
        let outcome: Result<[UInt8], SignerError>
        do throws(SignerError) {
            outcome = .success(try await backend.sign(transaction: Self.transaction(nonce: 2), for: account))
        } catch {
            outcome = .failure(error)
        }
        kill(server.pid, SIGCONT)
        guard case .failure(let error) = outcome else {
            Issue.record("signed with Vault stopped")
            return
        }
        #expect(!error.isPermanent, "\(error)")
        try await Self.signsConcurrently(wallet, [address], count: 4)
    }

    /// TLS with the server's CA, and a client certificate when the listener requires one.
    @Test func tlsWithAClientCertificate() async throws {
        let server = try await VaultServer.start(requireClientCertificate: true)
        defer { server.stop() }
        let setup = try await server.setUpEthsign(count: 1)
        let certificate = try #require(server.clientCertificate)
        let key = try #require(server.clientKey)
        let backend = Self.backend(server, .token(.literal(setup.userToken))) {
            $0.tls = VaultTLS(caFile: server.ca, clientCertificateFile: certificate, clientKeyFile: key)
        }
        let wallet = try await Self.wallet(backend)
        try await Self.signsConcurrently(wallet, [try Address(hex: setup.accounts[0])], count: 3)

        let anonymous = Self.backend(server, .token(.literal(setup.userToken))) { $0.retry.maximumRetries = 0 }
        await #expect(throws: SignerError.self) { try await anonymous.accounts() }
        let missing = Self.backend(server, .token(.literal(setup.userToken))) {
            $0.tls = VaultTLS(caFile: "/no/such/ca.pem")
        }
        try await BackendConformance.refusesToList(missing, naming: "/no/such/ca.pem")
    }

    /// KV v2 mode: the hex key (with or without 0x) is read into memory and signs digests here; a warning says the
    /// key has left Vault.
    @Test func kv2KeysSignInMemory() async throws {
        let server = try await VaultServer.start()
        defer { server.stop() }
        let plain = try await server.setUpKV(path: "gateway/key-0")
        let prefixed = try await server.setUpKV(path: "gateway/key-1", prefixed: true)
        #expect(prefixed.privateKey.hasPrefix("0x"))
        let logs = RecordingLogHandler()
        let backend = Self.backend(server, .token(.literal(server.rootToken)), logger: Logger(label: "t") { _ in logs })
        {
            $0.mode = .kv2
            $0.paths = [plain.path, prefixed.path]
        }
        #expect(logs.lines.contains { $0.contains("warning") && $0.contains("leave Vault") })
        #expect(backend.signingForm == .digest)
        let (conformance, accounts) = try await BackendConformance.listing(
            backend, are: Self.addresses([plain.address, prefixed.address]))
        try await conformance.signsConcurrently(accounts, count: 100)
        #expect(try backend.signNow(digest: Bytes32(Array(repeating: 5, count: 32))!, for: accounts[0]) != nil)
        let unknown = try await conformance.refusesAnUnknownKey()
        #expect(unknown.label == "unknown_account")
        #expect(!logs.lines.contains { $0.contains(plain.privateKey) || $0.contains(server.rootToken) })

        // The token setup_vault made reads exactly its path.
        let narrow = Self.backend(server, .token(.literal(plain.token))) {
            $0.mode = .kv2
            $0.paths = [plain.path, prefixed.path]
        }
        try await BackendConformance.refusesToList(narrow, naming: "permission denied")
    }

    /// With the admin policy: accounts created and imported by the plugin (`POST accounts`), signing whole
    /// transactions, and deleted (`DELETE accounts/<address>`). The user policy alone may do none of it.
    @Test func createsImportsAndDeletesAccounts() async throws {
        let server = try await VaultServer.start()
        defer { server.stop() }
        let setup = try await server.setUpEthsign(count: 1)
        try await KeyManagementConformance(chainID: Self.chainID) {
            Self.backend(server, .token(.literal(setup.adminToken)))
        }.createsSignsAndDeletes(imports: true)
        let user = Self.backend(server, .token(.literal(setup.userToken)))
        await #expect(throws: SignerError.self) { try await user.createAccount(label: nil) }
    }
}
