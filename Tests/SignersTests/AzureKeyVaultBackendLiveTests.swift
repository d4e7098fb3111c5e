import Ethereum
import Foundation
import Logging
import Signers
import SignersAzure
import Synchronization
import TestSupport
import Testing

/// The Azure Key Vault backend against Tools/azure (Key Vault REST 7.4 over HTTPS with its own CA, an Entra ID
/// authority and IMDS, checked against Microsoft's SDK): keys made as an operator would, addresses derived from the
/// JWKs the vault answers, signatures recovered to them, and the vault's failures met as Azure's clients meet them.
@Suite(.tags(.live)) struct AzureKeyVaultBackendLiveTests {
    static let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    static func backend(
        _ server: AzureServer, name: String = "akv", logger: Logger = logger,
        configure: (inout AzureKeyVaultBackend.Settings) -> Void = { _ in }
    ) -> AzureKeyVaultBackend {
        var settings = AzureKeyVaultBackend.Settings(
            vault: AzureKeyVaultBackend.VaultURL(server.vault)!,
            authentication: .clientSecret(
                tenantID: server.tenant, clientID: server.clientID, secret: .literal(server.clientSecret),
                authorityHost: server.authority))
        settings.caFile = server.ca
        configure(&settings)
        return AzureKeyVaultBackend(name: name, settings: settings, logger: logger)
    }

    static func addresses(_ keys: [AzureServer.Key]) throws -> Set<Address> {
        Set(try keys.map { try Address(hex: $0.address) })
    }

    static func digest(_ byte: UInt8) -> Bytes32 { Bytes32(Array(repeating: byte, count: 32))! }

    static func number(_ stats: [String: Any], _ key: String) -> Int { stats[key] as? Int ?? -1 }

    static func tokenRequests(_ stats: [String: Any], _ kind: String = "client_credentials") -> Int {
        (stats["tokenRequests"] as? [String: Any])?[kind] as? Int ?? -1
    }

    @Test func conformance() async throws {
        let server = try await AzureServer.start(keyCount: 3)
        defer { server.stop() }
        let conformance = BackendConformance(Self.backend(server))
        let accounts = try await conformance.accounts(are: Self.addresses(server.keys))
        #expect(Set(accounts.map(\.keyReference)) == Set(server.keys.map { "\($0.name)/\($0.version)" }))
        try await conformance.signsConcurrently(accounts, count: 200)
        let unknown = try await conformance.refusesAnUnknownKey()
        #expect(unknown.label == "unknown_account")
        // Key Vault's s is either half (REFERENCE §4): the conformance suite saw them all come back low.
        let stats = try await server.stats()
        #expect(Self.number(stats, "signs") == 200)
        #expect(Self.tokenRequests(stats) == 1, "one token for every call")
    }

    /// The vault stops answering (the process stopped: connections open, no replies): retryable errors within the
    /// request timeout, and signatures again once it answers, without a restart.
    @Test func survivesTheVaultGoingSilentAndComingBack() async throws {
        let server = try await AzureServer.start(keyCount: 2)
        defer { server.stop() }
        let backend = Self.backend(server) { settings in
            settings.requestTimeout = .seconds(2)
            settings.retry.maximumRetries = 1
        }
        let (conformance, accounts) = try await BackendConformance.listing(backend, are: Self.addresses(server.keys))
        try await conformance.survivesAnOutage(
            accounts, during: { kill(server.pid, SIGSTOP) }, recover: { kill(server.pid, SIGCONT) })
    }

    /// More keys than one page (25), and keys on other curves among them: every P-256K key, nothing else.
    @Test func listingPagesThroughNextLinkAndKeepsOnlyP256KKeys() async throws {
        let server = try await AzureServer.start(keyCount: 27)
        defer { server.stop() }
        try await server.makeOtherKey(name: "p256-key", curve: "P-256")
        try await server.makeOtherKey(name: "p384-key", curve: "P-384")
        let backend = Self.backend(server)
        let (conformance, accounts) = try await BackendConformance.listing(backend, are: Self.addresses(server.keys))
        #expect(accounts.count == 27)
        try await conformance.signsConcurrently(accounts, count: 27)
        // Named explicitly, a key on another curve is the operator's mistake.
        try await BackendConformance.refusesToList(Self.backend(server) { $0.keys = ["p256-key"] }, naming: "P-256")
    }

    /// A name follows the key's current version (found again at each listing); name/version stays on that version.
    @Test func pinnedVersionsStayAndNamesFollowTheCurrentVersion() async throws {
        let server = try await AzureServer.start(keyCount: 1)
        defer { server.stop() }
        let first = server.keys[0]
        let latest = Self.backend(server) { $0.keys = [first.name] }
        let pinned = Self.backend(server) { $0.keys = ["\(first.name)/\(first.version)"] }
        #expect(try await latest.accounts().map(\.address) == [try Address(hex: first.address)])
        let rotated = try await server.makeKeys(count: 1)[0]
        #expect(rotated.name == first.name && rotated.version != first.version)
        let now = try await latest.accounts()
        #expect(now.map(\.address) == [try Address(hex: rotated.address)])
        #expect(now.first?.keyReference == "\(rotated.name)/\(rotated.version)")
        let old = try await pinned.accounts()
        #expect(old.map(\.address) == [try Address(hex: first.address)])
        try await BackendConformance(latest).signsConcurrently(now, count: 4)
        try await BackendConformance(pinned).signsConcurrently(old, count: 4)
    }

    /// Without a tenant id the first call goes without a token and the vault's challenge names the tenant; a token
    /// for the wrong resource is refused with a challenge naming Key Vault's, which is then used.
    @Test func theChallengeNamesTheTenantAndTheResource() async throws {
        let server = try await AzureServer.start(keyCount: 1)
        defer { server.stop() }
        let discovering = Self.backend(server) { settings in
            settings.authentication = .clientSecret(
                tenantID: nil, clientID: server.clientID, secret: .literal(server.clientSecret),
                authorityHost: server.authority)
        }
        var conformance = BackendConformance(discovering)
        var accounts = try await conformance.accounts(are: Self.addresses(server.keys))
        try await conformance.checkSignature(for: accounts[0], digest: Self.digest(1))
        var stats = try await server.stats()
        #expect(Self.number(stats, "challenges") == 1, "the probe")
        #expect(Self.tokenRequests(stats) == 1)

        try await server.control("reset")
        let misdirected = Self.backend(server) { $0.resource = "https://management.azure.com" }
        conformance = BackendConformance(misdirected)
        accounts = try await conformance.accounts(are: Self.addresses(server.keys))
        try await conformance.checkSignature(for: accounts[0], digest: Self.digest(2))
        stats = try await server.stats()
        #expect(Self.number(stats, "challenges") == 1, "AKV10022, invalid audience")
        #expect(Self.tokenRequests(stats) == 2, "the management token, then the vault's")

        // A tenant the authority does not know is a configuration error naming the backend.
        let lost = Self.backend(server, name: "akv-lost") { settings in
            settings.authentication = .clientSecret(
                tenantID: "no-such-tenant", clientID: server.clientID, secret: .literal(server.clientSecret),
                authorityHost: server.authority)
        }
        try await BackendConformance.refusesToList(lost, naming: "akv-lost")
    }

    /// Tokens revoked by the server before their time: the 401 drops the cached token, a new one is fetched, and
    /// the call is sent once more: the caller never sees it.
    @Test func anExpiredTokenIsReplacedOnTheChallenge() async throws {
        let server = try await AzureServer.start(keyCount: 2)
        defer { server.stop() }
        let backend = Self.backend(server)
        let (conformance, accounts) = try await BackendConformance.listing(backend, are: Self.addresses(server.keys))
        try await conformance.signsConcurrently(accounts, count: 4)
        let expired = try await server.control("expire-tokens")
        #expect((expired["expired"] as? Int ?? 0) >= 1)
        try await conformance.signsConcurrently(accounts, count: 40)
        let stats = try await server.stats()
        #expect(Self.tokenRequests(stats) == 2, "one new token for all 40 calls")
        #expect(Self.number(stats, "challenges") >= 1)
    }

    /// Short-lived tokens are replaced before they expire (here after 8 of their 12 s: the 4 s left are slack for a
    /// loaded machine's slow token request), so that no call meets a 401.
    @Test func tokensAreRefreshedBeforeTheyExpire() async throws {
        let server = try await AzureServer.start(keyCount: 1, tokenLifetimeSeconds: 12)
        defer { server.stop() }
        let backend = Self.backend(server)
        let (conformance, accounts) = try await BackendConformance.listing(backend, are: Self.addresses(server.keys))
        let started = ContinuousClock.now
        var index: UInt8 = 0
        // Three tokens: the first and two replacements, each fetched while calls went on with the one in hand.
        while Self.tokenRequests(try await server.stats()) < 3, ContinuousClock.now - started < .seconds(60) {
            try await conformance.checkSignature(for: accounts[0], digest: Self.digest(index))
            index &+= 1
            try await Task.sleep(for: .milliseconds(250))
        }
        let stats = try await server.stats()
        #expect(Self.tokenRequests(stats) >= 3)
        #expect(Self.number(stats, "challenges") == 0, "no call carried an expired token")
    }

    /// An idle backend's `Service` keeps its token fresh, so the first call after a long pause does not wait.
    @Test func theServiceKeepsTheTokenFreshWhileIdle() async throws {
        let server = try await AzureServer.start(keyCount: 1, tokenLifetimeSeconds: 10)
        defer { server.stop() }
        let backend = Self.backend(server)
        let accounts = try await backend.accounts()
        let service = Task { try await backend.run() }
        // Idle for more than two lifetimes: the service alone fetches the replacements (each a third of a lifetime
        // before its token expires: slack for a loaded machine).
        try await Task.sleep(for: .seconds(21))
        let before = Self.tokenRequests(try await server.stats())
        #expect(before >= 3, "refreshed without a call")
        try await BackendConformance(backend).checkSignature(for: accounts[0], digest: Self.digest(9))
        let stats = try await server.stats()
        #expect(Self.number(stats, "challenges") == 0)
        service.cancel()
        _ = try? await service.value
    }

    /// The VM's managed identity (IMDS, `Metadata: true`): system-assigned, or a user-assigned one by client id;
    /// an identity the machine does not have is the operator's to fix.
    @Test func managedIdentity() async throws {
        let identity = UUID().uuidString.lowercased()
        let server = try await AzureServer.start(keyCount: 2, imdsClientID: identity)
        defer { server.stop() }
        let endpoint = server.imds + "/metadata/identity/oauth2/token"
        for clientID in [identity, nil] {
            let backend = Self.backend(server) {
                $0.authentication = .managedIdentity(endpoint: endpoint, clientID: clientID)
            }
            let (conformance, accounts) = try await BackendConformance.listing(
                backend, are: Self.addresses(server.keys))
            try await conformance.signsConcurrently(accounts, count: 10)
        }
        #expect(Self.tokenRequests(try await server.stats(), "imds") == 2)
        #expect(Self.tokenRequests(try await server.stats(), "client_credentials") == 0)
        let stranger = Self.backend(server) {
            $0.authentication = .managedIdentity(endpoint: endpoint, clientID: UUID().uuidString.lowercased())
        }
        try await BackendConformance.refusesToList(stranger, naming: "Identity not found")
    }

    /// A key deleted from the vault: its signatures fail as "unknown account" (that account, not the backend, is
    /// the problem), and it is gone from the next listing.
    @Test func aDeletedKeyIsAnUnknownAccount() async throws {
        let server = try await AzureServer.start(keyCount: 2)
        defer { server.stop() }
        let backend = Self.backend(server)
        let accounts = try await BackendConformance(backend).accounts(are: Self.addresses(server.keys))
        let deletedAddress = try Address(hex: server.keys[0].address)
        let deleted = try #require(accounts.first { $0.address == deletedAddress })
        try await server.delete(server.keys[0])
        let error = try await #require(throws: SignerError.self) {
            try await backend.sign(digest: Self.digest(1), for: deleted)
        }
        #expect(error.label == "unknown_account")
        #expect(error.isPermanent)
        #expect(error.description.contains(server.keys[0].name))
        #expect(try await backend.accounts().map(\.address) == [try Address(hex: server.keys[1].address)])
    }

    /// A disabled key refuses, permanently (no nonce may be burned retrying), the others sign, and it signs again
    /// once enabled.
    @Test func aDisabledKeyRefusesUntilEnabled() async throws {
        let server = try await AzureServer.start(keyCount: 2)
        defer { server.stop() }
        let backend = Self.backend(server)
        let (conformance, accounts) = try await BackendConformance.listing(backend, are: Self.addresses(server.keys))
        let disabledAddress = try Address(hex: server.keys[0].address)
        let disabled = try #require(accounts.first { $0.address == disabledAddress })
        let other = try #require(accounts.first { $0.address != disabledAddress })
        try await server.setEnabled(false, server.keys[0])
        let error = try await #require(throws: SignerError.self) {
            try await backend.sign(digest: Self.digest(1), for: disabled)
        }
        #expect(error.label == "rejected")
        #expect(error.isPermanent)
        #expect(error.description.contains("disabled"))
        #expect(try await backend.accounts().count == 2, "a disabled key is still listed, so its error is clear")
        try await conformance.checkSignature(for: other, digest: Self.digest(2))
        try await server.setEnabled(true, server.keys[0])
        try await conformance.checkSignature(for: disabled, digest: Self.digest(3))
    }

    /// 429 with Retry-After is waited out as asked; a Retry-After longer than is worth waiting fails at once, as a
    /// retryable error.
    @Test func throttlingIsWaitedOutAsTheVaultAsks() async throws {
        let server = try await AzureServer.start(keyCount: 1)
        defer { server.stop() }
        let backend = Self.backend(server)
        let accounts = try await backend.accounts()
        try await server.control("throttle", ["count": 2, "retryAfter": 1])
        let started = ContinuousClock.now
        try await BackendConformance(backend).checkSignature(for: accounts[0], digest: Self.digest(1))
        #expect(ContinuousClock.now - started >= .seconds(2), "waited the 1 s it was asked, twice")
        #expect(Self.number(try await server.stats(), "throttled") == 2)

        try await server.control("throttle", ["count": 1, "retryAfter": 60])
        let early = ContinuousClock.now
        let error = try await #require(throws: SignerError.self) {
            try await backend.sign(digest: Self.digest(2), for: accounts[0])
        }
        #expect(!error.isPermanent)
        #expect(error.description.contains("Throttled"))
        #expect(ContinuousClock.now - early < .seconds(10))
        try await BackendConformance(backend).checkSignature(for: accounts[0], digest: Self.digest(3))
    }

    /// 5xx answers are retried with backoff; a vault failing for longer than the retries fails retryably.
    @Test func serviceFailuresAreRetried() async throws {
        let server = try await AzureServer.start(keyCount: 1)
        defer { server.stop() }
        let backend = Self.backend(server)
        let accounts = try await backend.accounts()
        for status in [500, 502, 503, 504] {
            try await server.control("fail", ["count": 2, "status": status])
            try await BackendConformance(backend).checkSignature(
                for: accounts[0], digest: Self.digest(UInt8(status % 256)))
        }
        #expect(Self.number(try await server.stats(), "failed") == 8)
        try await server.control("fail", ["count": 20, "status": 503])
        let error = try await #require(throws: SignerError.self) {
            try await backend.sign(digest: Self.digest(9), for: accounts[0])
        }
        #expect(error.label == "backend_unavailable")
        #expect(!error.isPermanent)
        try await server.control("reset")
        try await BackendConformance(backend).checkSignature(for: accounts[0], digest: Self.digest(10))
    }

    /// A wrong client secret stops the gateway at start with a message naming the entry; neither the secret nor a
    /// token reaches a log line, whatever happens.
    @Test func aWrongSecretIsAConfigurationErrorAndSecretsAreNeverLogged() async throws {
        let server = try await AzureServer.start(keyCount: 1)
        defer { server.stop() }
        let logs = RecordingLogHandler()
        let logger = Logger(label: "test", factory: { _ in logs })
        let wrong = Self.backend(server, name: "akv-eu", logger: logger) { settings in
            settings.authentication = .clientSecret(
                tenantID: server.tenant, clientID: server.clientID, secret: .literal("not-the-secret"),
                authorityHost: server.authority)
        }
        let error = try await BackendConformance.refusesToList(wrong, naming: "akv-eu")
        #expect(error.description.contains("invalid_client"))
        #expect(!error.description.contains("not-the-secret"))

        let backend = Self.backend(server, logger: logger) { $0.resource = "https://management.azure.com" }
        let accounts = try await backend.accounts()
        _ = try await server.control("expire-tokens")
        _ = try await backend.sign(digest: Self.digest(1), for: accounts[0])
        let lines = logs.lines
        #expect(!lines.isEmpty, "the challenge was logged")
        for line in lines {
            #expect(!line.contains(server.clientSecret) && !line.contains("not-the-secret") && !line.contains("Bearer"))
        }
    }

    /// `POST /keys/{name}/create` (EC, P-256K) makes a key a new backend lists and signs with; `DELETE /keys/{name}`
    /// soft-deletes it out of the listing.
    @Test func createsAndDeletesKeys() async throws {
        let server = try await AzureServer.start()
        defer { server.stop() }
        let created = try await KeyManagementConformance { Self.backend(server) }.createsSignsAndDeletes(
            label: "made-by-a-test", imports: false)
        #expect(created.keyReference.hasPrefix("made-by-a-test/"))
        await #expect(throws: SignerError.self) { try await Self.backend(server).createAccount(label: "not/a name") }
    }
}
