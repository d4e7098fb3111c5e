import Ethereum
import JSON
import Signers
import Testing

@testable import SignersAzure

/// What the Azure backend reads from Key Vault, checked without a server: JWKs, raw r ‖ s signatures, the 401
/// challenge, key identifiers.
@Suite struct AzureParsingTests {
    static func jwk(_ key: PrivateKey, kty: String = "EC", crv: String = "P-256K", kid: String? = nil) -> JSONValue {
        let point = key.publicKey.uncompressed
        return [
            "kid": .string(kid ?? "https://v.vault.azure.net/keys/k/0123456789abcdef0123456789abcdef"),
            "kty": .string(kty), "crv": .string(crv), "x": .string(Base64URL.encode(point[1..<33])),
            "y": .string(Base64URL.encode(point[33..<65])),
        ]
    }

    @Test(arguments: ["EC", "EC-HSM"])
    func aP256KJWKGivesTheKeysAddress(kty: String) throws {
        let key = PrivateKey.random()
        let jwk = try JSONWebKey(json: Self.jwk(key, kty: kty))
        #expect(jwk.isSecp256k1)
        #expect(try jwk.publicKey() == key.publicKey)
        #expect(try jwk.publicKey().address == key.address)
    }

    @Test func otherCurvesAndBrokenCoordinatesAreRefused() throws {
        let key = PrivateKey.random()
        let p256 = try JSONWebKey(json: Self.jwk(key, crv: "P-256"))
        #expect(!p256.isSecp256k1)
        #expect(throws: SignerError.self) { try p256.publicKey() }
        #expect(try !JSONWebKey(json: Self.jwk(key, kty: "RSA")).isSecp256k1)

        var short = Self.jwk(key).objectValue!
        short["x"] = .string(Base64URL.encode([UInt8](repeating: 1, count: 31)))
        #expect(throws: SignerError.self) { try JSONWebKey(json: .object(short)).publicKey() }
        var offCurve = Self.jwk(key).objectValue!
        offCurve["y"] = .string(Base64URL.encode([UInt8](repeating: 0, count: 32)))
        let error = try #require(throws: SignerError.self) { try JSONWebKey(json: .object(offCurve)).publicKey() }
        #expect(error.label == "invalid_public_key")
    }

    /// Key Vault does not normalise s: both halves must come out canonical, recovering to the key.
    @Test func rawRAndSBecomeALowSSignatureWithItsRecoveryID() throws {
        let key = PrivateKey.random()
        for index in 0..<32 {
            let digest = Keccak256.hash(Array("message \(index)".utf8))
            let canonical = Secp256k1.sign(digest: digest, with: key)
            let high = Secp256k1.order - canonical.s
            for s in [canonical.s, high] {
                let raw = canonical.r.bigEndianBytes + s.bigEndianBytes
                let encoded = Base64URL.encode(raw)
                let (r, parsedS) = try Secp256k1.parseCompact(try #require(Base64URL.decode(encoded)))
                let signature = try Secp256k1.signature(r: r, s: parsedS, digest: digest, publicKey: key.publicKey)
                #expect(signature.s <= Secp256k1.halfOrder)
                #expect(signature == canonical)
                #expect(try Secp256k1.recoverAddress(digest: digest, signature: signature) == key.address)
            }
        }
    }

    @Test func base64URLIsUnpaddedAndStrict() {
        let bytes: [UInt8] = [0xfb, 0xff, 0xfe, 0x00]
        #expect(Base64URL.encode(bytes) == "-__-AA")
        #expect(Base64URL.decode("-__-AA") == bytes)
        #expect(Base64URL.decode("-__-AA==") == bytes)
        #expect(Base64URL.decode("+//+AA") == nil, "the standard alphabet is not base64url")
        #expect(Base64URL.decode("A") == nil)
    }

    @Test func keyVaultsChallengeNamesTheAuthorityTenantAndResource() throws {
        let challenge = try #require(
            BearerChallenge(
                header: #"Bearer authorization="https://login.microsoftonline.com/72f988bf-86f1", "#
                    + #"resource="https://vault.azure.net""#))
        #expect(challenge.authorization == "https://login.microsoftonline.com/72f988bf-86f1")
        #expect(challenge.authorityHost == "https://login.microsoftonline.com")
        #expect(challenge.tenant == "72f988bf-86f1")
        #expect(challenge.resource == "https://vault.azure.net")

        let local = try #require(
            BearerChallenge(
                header: #"Bearer authorization="https://127.0.0.1:4433/T", resource="https://vault.azure.net""#))
        #expect(local.authorityHost == "https://127.0.0.1:4433")
        #expect(local.tenant == "T")
    }

    @Test func otherChallengeSpellingsAreUnderstood() throws {
        let scoped = try #require(
            BearerChallenge(
                header:
                    #"Bearer authorization_uri="https://login.windows.net/t1", "#
                    + #"scope="https://vault.azure.net/.default""#
            ))
        #expect(scoped.tenant == "t1")
        #expect(scoped.resource == "https://vault.azure.net")

        // Several challenges in one header, unquoted values, other cases: the Bearer one's parameters only.
        let several = try #require(
            BearerChallenge(
                header: #"PoP nonce="abc", realm="x", bearer resource=https://vault.azure.cn, "#
                    + #"authorization="https://login.chinacloudapi.cn/t2", Basic realm="other""#))
        #expect(several.resource == "https://vault.azure.cn")
        #expect(several.tenant == "t2")

        let escaped = try #require(BearerChallenge(header: #"Bearer authorization="https://a/t\"x", resource="r""#))
        #expect(escaped.authorization == #"https://a/t"x"#)

        #expect(BearerChallenge(header: #"Basic realm="vault""#) == nil)
        #expect(BearerChallenge(header: "") == nil)
        let bare = try #require(BearerChallenge(header: "Bearer"))
        #expect(bare.authorization == nil && bare.resource == nil && bare.tenant == nil)
    }

    @Test func keyReferencesAreNamesOrNameSlashVersion() throws {
        let latest = try #require(KeyIdentifier(reference: "signer-0"))
        #expect(latest.version == nil)
        #expect(latest.path == "/keys/signer-0/")
        let pinned = try #require(KeyIdentifier(reference: "signer-0/0123456789abcdef0123456789abcdef"))
        #expect(pinned.path == "/keys/signer-0/0123456789abcdef0123456789abcdef")
        #expect(pinned.description == "signer-0/0123456789abcdef0123456789abcdef")
        for bad in ["", "a/b/c", "a b", "../x", "a/", "k%2F", String(repeating: "a", count: 128)] {
            #expect(KeyIdentifier(reference: bad) == nil, "\(bad)")
        }
        let fromKid = try #require(KeyIdentifier(kidPath: "/keys/signer-1/abc"))
        #expect(fromKid.name == "signer-1" && fromKid.version == "abc")
        #expect(KeyIdentifier(kidPath: "/secrets/x/y") == nil)
    }

    @Test func vaultURLsAreHTTPSOriginsAndNextLinksMustStayOnThem() throws {
        let vault = try #require(AzureKeyVaultBackend.VaultURL("https://My-Vault.vault.azure.net/"))
        #expect(vault.origin == "https://my-vault.vault.azure.net")
        #expect(vault.contains("https://my-vault.vault.azure.net/keys?api-version=7.4&$skiptoken=x"))
        #expect(!vault.contains("https://evil.example/keys"))
        #expect(!vault.contains("http://my-vault.vault.azure.net/keys"))
        #expect(vault.isUnder(resource: "https://vault.azure.net"))
        #expect(!vault.isUnder(resource: "https://management.azure.com"))
        #expect(AzureKeyVaultBackend.VaultURL("http://my-vault.vault.azure.net") == nil)
        #expect(AzureKeyVaultBackend.VaultURL("https://my-vault.vault.azure.net/keys") == nil)
    }

    /// Errors are told apart by status and code: the message is for people.
    @Test func keyVaultErrorsAreClassifiedByStatusAndCode() {
        let disabled = KeyVaultError.answer(
            status: 403,
            body: Array(
                #"{"error":{"code":"Forbidden","message":"Operation sign is not allowed on a disabled key.","#
                    .utf8) + Array(#""innererror":{"code":"KeyDisabled"}}}"#.utf8), retryAfter: nil)
        #expect(disabled.code == "Forbidden")
        #expect(disabled.innerCode == "KeyDisabled")
        #expect(!disabled.isRetryable)
        let throttled = KeyVaultError.answer(
            status: 429, body: Array(#"{"error":{"code":"Throttled","message":"…"}}"#.utf8), retryAfter: .seconds(2))
        #expect(throttled.isRetryable)
        #expect(throttled.retryAfter == .seconds(2))
        let proxy = KeyVaultError.answer(status: 502, body: Array("<html>bad gateway</html>".utf8), retryAfter: nil)
        #expect(proxy.isRetryable)
        #expect(proxy.code == "HTTP502")
        let refused = KeyVaultError.tokenAnswer(
            status: 401, body: Array(#"{"error":"invalid_client","error_description":"AADSTS7000215"}"#.utf8),
            retryAfter: nil)
        #expect(refused.code == "invalid_client")
        #expect(!refused.isRetryable)
    }

    @Test func tokenAnswersGiveALifetimeFromANumberOrAString() throws {
        let now = ContinuousClock.now
        let entra = try EntraTokenSource.credential(
            from: Array(#"{"token_type":"Bearer","expires_in":3599,"access_token":"t1"}"#.utf8), issued: now,
            margin: .seconds(300))
        #expect(entra.secret == "t1")
        #expect(entra.expiresAt == now + .seconds(3599))
        #expect(entra.refreshAt == now + .seconds(3299))
        let imds = try EntraTokenSource.credential(
            from: Array(#"{"access_token":"t2","expires_in":"60","token_type":"Bearer"}"#.utf8), issued: now,
            margin: .seconds(300))
        #expect(imds.refreshAt == now + .seconds(40), "two thirds of a short life")
        #expect(throws: KeyVaultError.self) {
            try EntraTokenSource.credential(from: Array(#"{"expires_in":60}"#.utf8), issued: now, margin: .seconds(1))
        }
        #expect(!"\(imds)".contains("t2"), "a credential's description hides the secret")
    }

    @Test func formBodiesEscapeEveryReservedCharacter() {
        #expect(
            EntraTokenSource.formEncoded([("client_secret", "a+b&c=d/e f~")])
                == "client_secret=a%2Bb%26c%3Dd%2Fe%20f~")
        #expect(EntraTokenSource.scope(for: "https://vault.azure.net/") == "https://vault.azure.net/.default")
    }
}
