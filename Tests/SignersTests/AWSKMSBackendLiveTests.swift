import Ethereum
import Foundation
import Logging
import Signers
import SignersAWSKMS
import TestSupport
import Testing

/// The AWS KMS backend against Tools/kms (moto behind real HTTP, SigV4 and IAM enforced): keys created in KMS as an
/// operator would, addresses derived from the public keys KMS answers, signatures recovered to them.
@Suite(.tags(.live)) struct AWSKMSBackendLiveTests {
    static let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    static func backend(
        _ server: KMSServer, name: String = "kms", secret: String? = nil,
        configure: (inout AWSKMSBackend.Settings) -> Void = { _ in }
    ) -> AWSKMSBackend {
        var settings = AWSKMSBackend.Settings(
            region: server.region,
            credentials: AWSCredentials.Source(
                accessKeyID: .literal(server.accessKeyID), secretAccessKey: .literal(secret ?? server.secretAccessKey),
                sessionToken: nil))
        settings.endpoint = AWSKMSBackend.Endpoint(url: server.endpoint)
        configure(&settings)
        return AWSKMSBackend(name: name, settings: settings, logger: logger)
    }

    static func addresses(_ keys: [KMSServer.Key]) throws -> Set<Address> {
        Set(try keys.map { try Address(hex: $0.address) })
    }

    @Test func conformance() async throws {
        let server = try await KMSServer.start(keyCount: 3)
        defer { server.stop() }
        try await BackendConformance(Self.backend(server)).holds(Self.addresses(server.keys))
    }

    /// KMS stops answering (the process stopped: connections open, no replies, as in a partition): retryable errors
    /// within the request timeout, and signatures again once it answers, without a restart.
    @Test func survivesKMSGoingSilentAndComingBack() async throws {
        let server = try await KMSServer.start(keyCount: 2)
        defer { server.stop() }
        let backend = Self.backend(server) { settings in
            // Long enough for a loaded machine once KMS answers again (the stopped server then works through the
            // abandoned requests first); the attempts run concurrently, so the outage phase still takes seconds.
            settings.requestTimeout = .seconds(2)
            settings.maximumRetries = 1
        }
        let (conformance, accounts) = try await BackendConformance.listing(backend, are: Self.addresses(server.keys))
        try await conformance.survivesAnOutage(
            accounts, during: { kill(server.pid, SIGSTOP) }, recover: { kill(server.pid, SIGCONT) })
    }

    /// Keys named by id, ARN or alias sign as the key they name; with none named, every key the credentials list.
    @Test func configuredKeysByIdArnOrAlias() async throws {
        let server = try await KMSServer.start(keyCount: 3)
        defer { server.stop() }
        let keys = server.keys
        let named = Self.backend(server) { $0.keys = [keys[0].keyID, keys[1].arn, keys[2].alias] }
        let (conformance, accounts) = try await BackendConformance.listing(named, are: Self.addresses(keys))
        #expect(Set(accounts.map(\.keyReference)) == [keys[0].keyID, keys[1].arn, keys[2].alias])
        try await conformance.signsConcurrently(accounts, count: 12)
        let one = try await Self.backend(server) { $0.keys = [keys[1].alias] }.accounts()
        #expect(one.map(\.address) == [try Address(hex: keys[1].address)])
    }

    @Test func aWrongSecretIsAConfigurationErrorNamingTheBackend() async throws {
        let server = try await KMSServer.start(keyCount: 1)
        defer { server.stop() }
        let refused = Self.backend(server, name: "kms-eu", secret: "not-the-secret")
        let error = try await BackendConformance.refusesToList(refused, naming: "kms-eu")
        #expect(error.description.contains("credentials"))
    }

    @Test func aConfiguredKeyThatDoesNotExistIsAConfigurationError() async throws {
        let server = try await KMSServer.start(keyCount: 1)
        defer { server.stop() }
        let missing = Self.backend(server) { $0.keys = ["alias/no-such-key"] }
        try await BackendConformance.refusesToList(missing, naming: "alias/no-such-key")
    }

    /// A key disabled by its owner refuses, permanently (no retry can help, the pipeline must not burn a nonce on it),
    /// and signs again once enabled.
    @Test func aDisabledKeyRefusesUntilEnabled() async throws {
        let server = try await KMSServer.start(keyCount: 2)
        defer { server.stop() }
        let backend = Self.backend(server)
        let (conformance, accounts) = try await BackendConformance.listing(backend, are: Self.addresses(server.keys))
        let disabledAddress = try Address(hex: server.keys[0].address)
        let disabled = try #require(accounts.first { $0.address == disabledAddress })
        let other = try #require(accounts.first { $0.address != disabledAddress })
        try await server.setEnabled(false, key: server.keys[0])
        let error = try await #require(throws: SignerError.self) {
            try await backend.sign(digest: Bytes32(Array(repeating: 1, count: 32))!, for: disabled)
        }
        #expect(error.label == "rejected")
        #expect(error.isPermanent)
        #expect(error.description.contains("Disabled"))
        try await conformance.checkSignature(for: other, digest: Bytes32(Array(repeating: 2, count: 32))!)
        try await server.setEnabled(true, key: server.keys[0])
        try await conformance.checkSignature(for: disabled, digest: Bytes32(Array(repeating: 3, count: 32))!)
    }

    /// CreateKey makes a secp256k1 signing key that a new backend lists; ScheduleKeyDeletion takes it out of the
    /// listing at once (DescribeKey: PendingDeletion). With configured keys, both are refused: the list is the
    /// operator's.
    @Test func createsAndSchedulesTheDeletionOfKeys() async throws {
        let server = try await KMSServer.start(keyCount: 1)
        defer { server.stop() }
        try await KeyManagementConformance { Self.backend(server) }.createsSignsAndDeletes(
            label: "made by a test", imports: false)
        let configured = Self.backend(server) { $0.keys = [server.keys[0].keyID] }
        await #expect(throws: SignerError.self) { try await configured.createAccount(label: nil) }
        let account = try #require(try await configured.accounts().first)
        await #expect(throws: SignerError.self) { try await configured.deleteAccount(account) }
        #expect(try await configured.accounts().count == 1)
    }
}
