import Foundation
import JSON
import Signers

/// What a token is for: the resource (`https://vault.azure.net`; the challenge may name another, for a sovereign
/// cloud) and, for client credentials, the tenant whose authority issues it.
struct TokenAudience: Sendable, Hashable {
    var resource: String
    var tenantID: String?
}

/// Access tokens from Microsoft Entra ID, by client secret or from the managed-identity endpoint. The secret is
/// resolved at each request (a rotated secret file is picked up without a restart) and never leaves this type except
/// in the form body sent to the authority.
struct EntraTokenSource: Sendable {
    let authentication: AzureAuthentication

    /// Whether a token can be asked for before the vault has named the tenant.
    func knowsTenant(_ audience: TokenAudience) -> Bool {
        guard case .clientSecret(let configured, _, _, _) = authentication else { return true }
        return configured != nil || audience.tenantID != nil
    }

    let http: AzureHTTP
    /// How long before its end a token is replaced.
    let refreshMargin: Duration

    func token(for audience: TokenAudience) async throws(KeyVaultError) -> ExpiringCredential<String> {
        try await http.withRetries { () async throws(KeyVaultError) -> ExpiringCredential<String> in
            let issued = ContinuousClock.now
            let answer: AzureHTTP.Answer
            switch authentication {
            case .clientSecret(let configuredTenant, let clientID, let secret, let authorityHost):
                let resolved: [UInt8]
                do { resolved = try secret.resolve() } catch { throw .configuration("client secret: \(error)") }
                guard let tenant = audience.tenantID ?? configuredTenant else {
                    throw .configuration("no tenantId configured, and no challenge from the vault has named one")
                }
                let form = [
                    ("grant_type", "client_credentials"), ("client_id", clientID),
                    ("client_secret", String(decoding: resolved, as: UTF8.self)),
                    ("scope", Self.scope(for: audience.resource)),
                ]
                answer = try await http.send(
                    .POST, Self.trimmed(authorityHost) + "/" + Self.pathSegment(tenant) + "/oauth2/v2.0/token",
                    headers: [("Content-Type", "application/x-www-form-urlencoded"), ("Accept", "application/json")],
                    body: Array(Self.formEncoded(form).utf8))
            case .managedIdentity(let endpoint, let clientID):
                var query = [("api-version", "2018-02-01"), ("resource", audience.resource)]
                if let clientID { query.append(("client_id", clientID)) }
                let separator = endpoint.contains("?") ? "&" : "?"
                answer = try await http.send(
                    .GET, endpoint + separator + Self.formEncoded(query), headers: [("Metadata", "true")])
                // IMDS answers 404 and 410 while an identity is being assigned or IMDS itself updated: wait it out.
                if answer.status == 404 || answer.status == 410 {
                    throw .transport("the managed-identity endpoint is not ready (HTTP \(answer.status))")
                }
            }
            guard answer.status == 200 else {
                throw KeyVaultError.tokenAnswer(status: answer.status, body: answer.body, retryAfter: answer.retryAfter)
            }
            return try Self.credential(from: answer.body, issued: issued, margin: refreshMargin)
        }
    }

    /// `{"access_token", "expires_in"}`; Entra writes `expires_in` as a number, IMDS as a string.
    static func credential(
        from body: [UInt8], issued: ContinuousClock.Instant, margin: Duration
    ) throws(KeyVaultError) -> ExpiringCredential<String> {
        guard let json = try? JSONParser.parse(body), let token = json["access_token"]?.stringValue, !token.isEmpty
        else { throw .malformed("the token answer has no access_token") }
        let lifetimeText = json["expires_in"]?.numberText ?? json["expires_in"]?.stringValue
        guard let lifetimeText, let seconds = Int(lifetimeText), seconds > 0 else {
            throw .malformed("the token answer has no usable expires_in")
        }
        return ExpiringCredential(secret: token, lifetime: .seconds(seconds), issued: issued, margin: margin)
    }

    /// The v2.0 endpoint takes scopes: the resource's `.default` scope.
    static func scope(for resource: String) -> String {
        trimmed(resource) + "/.default"
    }

    static func trimmed(_ url: String) -> String {
        var url = url
        while url.hasSuffix("/") { url.removeLast() }
        return url
    }

    private static func pathSegment(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? text
    }

    private static let unreserved = CharacterSet(
        charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

    /// `application/x-www-form-urlencoded`, every reserved character escaped (a secret may hold `&`, `=` or `+`).
    static func formEncoded(_ pairs: [(String, String)]) -> String {
        pairs.map { name, value in
            (name.addingPercentEncoding(withAllowedCharacters: unreserved) ?? name) + "="
                + (value.addingPercentEncoding(withAllowedCharacters: unreserved) ?? value)
        }.joined(separator: "&")
    }
}
