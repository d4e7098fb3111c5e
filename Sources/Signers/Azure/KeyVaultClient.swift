import Foundation
import JSON
import Logging
import NIOHTTP1
import Signers
import Synchronization

/// Key Vault's REST API with a bearer token: the token comes from a `CredentialCache` shared by every call, a 401
/// drops it and the call is sent once more with a new one (the challenge's authority and resource honoured, within
/// the limits `TokenAudience.honouring` sets), and throttling and failures are retried by `AzureHTTP`.
final class KeyVaultClient: Sendable {
    let vault: AzureKeyVaultBackend.VaultURL
    let apiVersion: String
    private let http: AzureHTTP
    private let source: EntraTokenSource
    private let tokens: CredentialCache<String>
    private let audience: SharedAudience
    private let configuredResource: String
    private let logger: Logger
    private let label: String

    init(
        vault: AzureKeyVaultBackend.VaultURL, apiVersion: String, resource: String, source: EntraTokenSource,
        http: AzureHTTP, label: String, logger: Logger
    ) {
        self.vault = vault
        self.apiVersion = apiVersion
        self.http = http
        self.source = source
        self.label = label
        self.logger = logger
        configuredResource = resource
        let audience = SharedAudience(TokenAudience(resource: resource, tenantID: nil))
        self.audience = audience
        tokens = CredentialCache { [source, audience] _ throws(SignerError) in
            do throws(KeyVaultError) {
                return try await source.token(for: audience.value.withLock { $0 })
            } catch {
                throw KeyVaultClient.signerError(forToken: error, label: label)
            }
        }
    }

    /// Keeps the token fresh while the gateway is idle (the backend's `Service`).
    func keepTokenFresh() async {
        await tokens.keepFresh(logger: logger, label: label)
    }

    /// `GET {vault}{path}?api-version=…` (plus `query`).
    func get(_ path: String, query: [(String, String)] = []) async throws(KeyVaultCallError) -> JSONValue {
        try await call(.GET, url(path, query: query), body: nil)
    }

    /// A `nextLink` from a list answer: followed only if it points into this vault (the token must go nowhere else).
    func get(nextLink: String) async throws(KeyVaultCallError) -> JSONValue {
        guard vault.contains(nextLink) else {
            throw .init(.malformed("nextLink \(nextLink) points outside \(vault.origin)"))
        }
        return try await call(.GET, nextLink, body: nil)
    }

    func post(_ path: String, _ body: JSONValue) async throws(KeyVaultCallError) -> JSONValue {
        try await call(.POST, url(path, query: []), body: JSONWriter.bytes(body))
    }

    func delete(_ path: String) async throws(KeyVaultCallError) -> JSONValue {
        try await call(.DELETE, url(path, query: []), body: nil)
    }

    private func url(_ path: String, query: [(String, String)]) -> String {
        vault.origin + path + "?" + EntraTokenSource.formEncoded([("api-version", apiVersion)] + query)
    }

    private func call(_ method: HTTPMethod, _ url: String, body: [UInt8]?) async throws(KeyVaultCallError) -> JSONValue
    {
        // One retry after a token is refused (the probe below is not a refusal: it carried no token).
        var challenged = false
        if !source.knowsTenant(audience.value.withLock({ $0 })) {
            // The SDK's way: a request without a token, answered with the challenge that names the tenant.
            let probe: AzureHTTP.Answer
            do {
                probe = try await http.withRetries { () async throws(KeyVaultError) -> AzureHTTP.Answer in
                    try await http.send(method, url, headers: [("Accept", "application/json")])
                }
            } catch {
                throw .init(error)
            }
            if probe.status == 401, let header = probe.headers.first(name: "WWW-Authenticate"),
                let challenge = BearerChallenge(header: header)
            {
                honour(challenge)
            }
        }
        while true {
            let token: String
            do { token = try await tokens.secret() } catch { throw .init(error) }
            let answer: AzureHTTP.Answer
            do {
                answer = try await http.withRetries { () async throws(KeyVaultError) -> AzureHTTP.Answer in
                    var headers = [("Authorization", "Bearer " + token), ("Accept", "application/json")]
                    if body != nil { headers.append(("Content-Type", "application/json")) }
                    let answer = try await http.send(method, url, headers: headers, body: body)
                    if answer.status == 429 || answer.status >= 500 {
                        throw KeyVaultError.answer(
                            status: answer.status, body: answer.body, retryAfter: answer.retryAfter)
                    }
                    return answer
                }
            } catch {
                throw .init(error)
            }
            if answer.status == 401 {
                let refused = KeyVaultError.answer(status: 401, body: answer.body, retryAfter: nil)
                guard !challenged else { throw .init(refused) }
                challenged = true
                if let header = answer.headers.first(name: "WWW-Authenticate"),
                    let challenge = BearerChallenge(header: header)
                {
                    honour(challenge)
                }
                tokens.invalidate(token)
                continue
            }
            guard (200..<300).contains(answer.status) else {
                throw .init(
                    KeyVaultError.answer(status: answer.status, body: answer.body, retryAfter: answer.retryAfter))
            }
            do {
                return try JSONParser.parse(answer.body)
            } catch {
                throw .init(
                    .malformed("the answer is not JSON: \(String(decoding: answer.body.prefix(200), as: UTF8.self))"))
            }
        }
    }

    /// The challenge says where tokens for this vault come from. Its resource is taken when it is the configured one,
    /// one of Azure's Key Vault resources, or the vault's own parent domain (`vault.azure.net` for
    /// `x.vault.azure.net`); its tenant when its authority is on the configured authority host. Anything else is
    /// ignored and logged: a client secret is never sent to a host the operator did not configure.
    private func honour(_ challenge: BearerChallenge) {
        let configuredHost: String?
        if case .clientSecret(_, _, _, let host) = source.authentication {
            configuredHost = EntraTokenSource.trimmed(host).lowercased()
        } else {
            configuredHost = nil
        }
        let honoured = audience.value.withLock { audience -> TokenAudience in
            if let resource = challenge.resource.map(EntraTokenSource.trimmed), resource != audience.resource {
                if resource == EntraTokenSource.trimmed(configuredResource) || vault.isUnder(resource: resource)
                    || Self.keyVaultResources.contains(resource.lowercased())
                {
                    audience.resource = resource
                } else {
                    logger.warning(
                        "ignoring the challenge's resource: it is not this vault's",
                        metadata: ["signer.backend": "\(label)", "azure.resource": "\(resource)"])
                }
            }
            if let tenant = challenge.tenant, let configuredHost {
                if challenge.authorityHost == configuredHost {
                    audience.tenantID = tenant
                } else {
                    logger.warning(
                        "ignoring the challenge's authority: it is not the configured authority host",
                        metadata: [
                            "signer.backend": "\(label)", "azure.authority": "\(challenge.authorityHost ?? "?")",
                        ])
                }
            }
            return audience
        }
        logger.debug(
            "Key Vault challenge",
            metadata: [
                "signer.backend": "\(label)", "azure.resource": "\(honoured.resource)",
                "azure.tenant": "\(honoured.tenantID ?? "(configured)")",
            ])
    }

    /// The Key Vault and Managed HSM resources of Azure's clouds: a token for one of them is good for nothing but a
    /// vault, so a challenge may name any of them. Any other resource (`https://management.azure.com`) could let
    /// whoever answers as the vault act as the gateway elsewhere.
    static let keyVaultResources: Set<String> = [
        "https://vault.azure.net", "https://vault.azure.cn", "https://vault.usgovcloudapi.net",
        "https://vault.microsoftazure.de", "https://managedhsm.azure.net", "https://managedhsm.azure.cn",
        "https://managedhsm.usgovcloudapi.net",
    ]

    /// A token that could not be had: refused credentials are the operator's to fix; an authority that is down or
    /// throttling is retryable.
    static func signerError(forToken error: KeyVaultError, label: String) -> SignerError {
        if error.isRetryable { return .backendUnavailable("\(label): cannot get an Entra ID token: \(error)") }
        return .configuration("\(label): Entra ID refused the credentials: \(error)")
    }
}

/// A Key Vault call's failure: Key Vault's answer, or a token that could not be had.
typealias KeyVaultCallError = BackendCallError<KeyVaultError>

/// The audience the token source reads and a challenge may change, shared by the client and its token cache.
private final class SharedAudience: Sendable {
    let value: Mutex<TokenAudience>

    init(_ audience: TokenAudience) { value = Mutex(audience) }
}
