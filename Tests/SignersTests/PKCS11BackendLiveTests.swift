import Ethereum
import Logging
import Signers
import SignersPKCS11
import TestSupport
import Testing

/// The PKCS#11 backend against SoftHSM2, the module an AWS CloudHSM deployment swaps for
/// `/opt/cloudhsm/lib/libcloudhsm_pkcs11.so`: keys generated in the token, never read out.
@Suite(.tags(.live)) struct PKCS11BackendLiveTests {
    static let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    static func backend(
        _ token: SoftHSMToken, name: String = "hsm", module: String = SoftHSMToken.modulePath,
        pin: String = SoftHSMToken.pin, configure: (inout PKCS11Backend.Settings) -> Void = { _ in }
    ) -> PKCS11Backend {
        var settings = PKCS11Backend.Settings(
            modulePath: module, tokenLabel: SoftHSMToken.label, pin: SecretReference(pin))
        settings.keyLabels = ["signer-*"]
        configure(&settings)
        return PKCS11Backend(name: name, settings: settings, logger: logger)
    }

    static func addresses(_ keys: [SoftHSMToken.Key]) throws -> Set<Address> {
        Set(try keys.map { Address(publicKey: try PublicKey(bytes: Hex.decode("0x" + $0.publicPoint))) })
    }

    @Test func conformance() async throws {
        let token = try await SoftHSMToken.shared()
        try await BackendConformance(Self.backend(token)).holds(Self.addresses(token.signers))
    }

    /// Every session closed under the backend, as when the HSM lost them: the backend opens new sessions, logs in
    /// and finds its keys again; no signature is lost and no restart is needed.
    @Test func recoversWhenTheHSMLosesEverySession() async throws {
        let token = try await SoftHSMToken.shared()
        let backend = Self.backend(token) { settings in
            settings.tokenLabel = SoftHSMToken.restartLabel
            settings.retries = 2
            settings.retryDelay = .milliseconds(5)
        }
        let (conformance, accounts) = try await BackendConformance.listing(
            backend, are: Self.addresses(token.restartSigners))
        try await conformance.signsConcurrently(accounts, count: 8)
        try token.closeAllSessions(token: SoftHSMToken.restartLabel)
        try await conformance.signsConcurrently(accounts, count: 40, seed: 7)
    }

    @Test func selectsKeysByLabelPatternOrIdAndSkipsOtherCurves() async throws {
        let token = try await SoftHSMToken.shared()
        let everything = try await Self.backend(token) { $0.keyLabels = [] }.accounts()
        // Every secp256k1 key, the spare too; never the P-256 one.
        #expect(Set(everything.map(\.address)) == (try Self.addresses(token.signers + [token.spare])))
        let byID = try await Self.backend(token) { settings in
            settings.keyLabels = []
            settings.keyIDs = [[0xa0], [0x02]]
        }.accounts()
        #expect(Set(byID.map(\.address)) == (try Self.addresses([token.spare, token.signers[1]])))
        #expect(byID.first { $0.address == (try? Self.addresses([token.spare]).first) }?.keyReference == "label:spare")
    }

    @Test func aWrongPINIsAConfigurationErrorNamingTheBackend() async throws {
        let token = try await SoftHSMToken.shared()
        // A token nobody logs in to: login state is per token, and a logged-in one lets any PIN through.
        let error = try await #require(throws: SignerError.self) {
            try await Self.backend(token, name: "cloudhsm-eu", pin: "9999") {
                $0.tokenLabel = SoftHSMToken.pinTestLabel
            }.accounts()
        }
        #expect(error.isConfiguration)
        #expect(error.description.contains("cloudhsm-eu"))
        #expect(error.description.contains("PIN"))
    }

    @Test func anUnknownTokenOrModuleIsAConfigurationErrorThatSaysWhatExists() async throws {
        let token = try await SoftHSMToken.shared()
        var settings = PKCS11Backend.Settings(
            modulePath: SoftHSMToken.modulePath, tokenLabel: "no-such-token", pin: SecretReference(SoftHSMToken.pin))
        let wrongToken = PKCS11Backend(name: "hsm", settings: settings, logger: Self.logger)
        try await BackendConformance.refusesToList(wrongToken, naming: "\"\(SoftHSMToken.label)\"")
        _ = token

        settings.modulePath = "/nonexistent/libpkcs11.so"
        let wrongModule = PKCS11Backend(name: "hsm", settings: settings, logger: Self.logger)
        try await BackendConformance.refusesToList(wrongModule, naming: "/nonexistent/libpkcs11.so")
    }

    /// Keys generated on the token (`C_GenerateKeyPair`, private half sensitive and not extractable), listed by a new
    /// backend, signing, and destroyed again; a label outside `keyLabels` is refused before anything is generated.
    @Test func createsAndDeletesKeysOnTheToken() async throws {
        let token = try await SoftHSMToken.shared()
        let conformance = KeyManagementConformance {
            Self.backend(token) { $0.tokenLabel = SoftHSMToken.keysLabel }
        }
        let created = try await conformance.createsSignsAndDeletes(label: "signer-made", imports: false)
        #expect(created.keyReference == "label:signer-made")
        try await conformance.createsSignsAndDeletes(imports: false)
        let backend = Self.backend(token) { $0.tokenLabel = SoftHSMToken.keysLabel }
        await #expect(throws: SignerError.keyManagement(
            "hsm uses only keys whose label matches signer-*; give a label that does")) {
            try await backend.createAccount(label: "other")
        }
        #expect(try await backend.accounts().isEmpty)
    }
}
