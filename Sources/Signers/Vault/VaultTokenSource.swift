import JSON
import Logging
import Signers

/// Where the backend's Vault token comes from, and how it is kept alive:
///
/// - a given token is looked up (`auth/token/lookup-self`: its remaining TTL, whether it is renewable) and renewed
///   (`auth/token/renew-self`) while Vault allows; a token Vault no longer accepts is the operator's to replace;
/// - an AppRole token is renewed while renewal gives it a useful life, and replaced by a new login when renewal is
///   refused, not allowed, or capped by the role's `token_max_ttl` (a renewal that returns a shorter lease than the
///   previous one).
///
/// The token and the secret id never reach a log line.
typealias VaultToken = ExpiringCredential<String>

struct VaultTokenSource: Sendable {
    let settings: VaultClient.Settings
    let exchange: VaultExchange
    let label: String
    let logger: Logger

    func credential(renewing current: VaultToken?) async throws(SignerError) -> VaultToken {
        switch settings.authentication {
        case .token(let reference):
            let token = try resolve(reference, "token")
            if let current, current.renewable, current.secret == token, let renewed = try await renew(current) {
                return renewed
            }
            return try await lookUp(token)
        case .appRole(let roleID, let secretID, let mount):
            if let current, current.renewable, let renewed = try await renew(current) {
                // A shorter lease than the last one: the role's max TTL caps it, and every renewal from here gives
                // less; a new login gives a full TTL.
                guard let before = current.lifetime, let after = renewed.lifetime, after < before else {
                    return renewed
                }
                logger.debug("Vault token near its max TTL: logging in again", metadata: ["signer.backend": "\(label)"])
            }
            return try await logIn(roleID: roleID, secretID: secretID, mount: mount)
        }
    }

    /// `renew-self`; nil when Vault refuses (the caller then looks up or logs in again). Unreachable Vault is an
    /// error: a new login would not get through either.
    private func renew(_ current: VaultToken) async throws(SignerError) -> VaultToken? {
        let issued = ContinuousClock.now
        let answer: VaultExchange.Answer
        do {
            answer = try await exchange.send(.POST, "auth/token/renew-self", token: current.secret, body: [:])
        } catch {
            throw signerError(error, "renewing the token")
        }
        guard answer.status == 200, let json = try? JSONParser.parse(answer.body), let auth = json["auth"] else {
            logger.info(
                "Vault refused to renew the token",
                metadata: ["signer.backend": "\(label)", "vault.status": "\(answer.status)"])
            return nil
        }
        return credential(current.secret, auth: auth, issued: issued)
    }

    private func lookUp(_ token: String) async throws(SignerError) -> VaultToken {
        let issued = ContinuousClock.now
        let answer: VaultExchange.Answer
        do {
            answer = try await exchange.send(.GET, "auth/token/lookup-self", token: token, body: nil)
        } catch {
            throw signerError(error, "looking up the token")
        }
        switch answer.status {
        case 200:
            guard let data = (try? JSONParser.parse(answer.body))?["data"] else {
                throw .backendUnavailable("\(label): auth/token/lookup-self answered without data")
            }
            let ttl = data["ttl"]?.int64Value ?? 0
            // ttl 0: a token without expiry (a root token); nothing to renew.
            return ExpiringCredential(
                secret: token, lifetime: ttl > 0 ? .seconds(ttl) : nil, issued: issued, margin: settings.renewMargin,
                renewable: data["renewable"]?.boolValue ?? false)
        case 403:
            // lookup-self is in Vault's default policy: refused, the token itself is not accepted (or was made
            // without the default policy, which the gateway's token needs for lookup-self and renew-self).
            throw .configuration(
                "\(label): Vault does not accept the token (invalid, expired or revoked; or made without the "
                    + "default policy, which grants auth/token/lookup-self and renew-self)")
        default:
            throw signerError(
                VaultError.reply(status: answer.status, body: answer.body, retryAfter: answer.retryAfter),
                "looking up the token")
        }
    }

    private func logIn(
        roleID: SecretReference, secretID: SecretReference, mount: String
    ) async throws(SignerError) -> VaultToken {
        let issued = ContinuousClock.now
        let body: JSONValue = [
            "role_id": .string(try resolve(roleID, "roleId")), "secret_id": .string(try resolve(secretID, "secretId")),
        ]
        let answer: VaultExchange.Answer
        do {
            answer = try await exchange.send(.POST, "auth/\(mount)/login", token: nil, body: body)
        } catch {
            throw signerError(error, "logging in with AppRole")
        }
        guard answer.status == 200 else {
            let error = VaultError.reply(status: answer.status, body: answer.body, retryAfter: answer.retryAfter)
            if error.isRetryable || answer.status >= 500 { throw signerError(error, "logging in with AppRole") }
            throw .configuration("\(label): Vault refused the AppRole login at auth/\(mount) (\(error))")
        }
        guard let auth = (try? JSONParser.parse(answer.body))?["auth"], let token = auth["client_token"]?.stringValue
        else { throw .backendUnavailable("\(label): the AppRole login answered without auth.client_token") }
        return credential(token, auth: auth, issued: issued)
    }

    /// `auth.lease_duration` (0: no expiry) and `auth.renewable`.
    private func credential(_ token: String, auth: JSONValue, issued: ContinuousClock.Instant) -> VaultToken {
        let lease = auth["lease_duration"]?.int64Value ?? 0
        return ExpiringCredential(
            secret: token, lifetime: lease > 0 ? .seconds(lease) : nil, issued: issued, margin: settings.renewMargin,
            renewable: auth["renewable"]?.boolValue ?? false)
    }

    private func resolve(_ reference: SecretReference, _ key: String) throws(SignerError) -> String {
        do {
            return String(decoding: try reference.resolve(), as: UTF8.self)
        } catch {
            throw .configuration("\(label): \(key): \(error)")
        }
    }

    private func signerError(_ error: VaultError, _ doing: String) -> SignerError {
        if case .configuration(let detail) = error { return .configuration("\(label): \(detail)") }
        if error.isRetryable || error.status.map({ $0 >= 500 }) == true {
            return .backendUnavailable("\(label): \(doing): \(error)")
        }
        return .configuration("\(label): \(doing): \(error)")
    }
}
