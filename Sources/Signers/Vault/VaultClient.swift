import AsyncHTTPClient
import Foundation
import JSON
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
import Signers
import Synchronization

/// Vault's HTTP API (`/v1/…`, `X-Vault-Token`, `X-Vault-Namespace`) on the process's shared `HTTPClient`, with the
/// configured TLS files. The token is shared by every call through a `CredentialCache`: looked up (a given token) or
/// obtained by AppRole login, renewed before it expires, and replaced by a new login when renewal cannot help. A 403
/// drops the token and the call is sent once more with a fresh one (a token revoked or expired under us); a second
/// 403 is a real permission denial.
final class VaultClient: Sendable {
    struct Settings: Sendable {
        var address: HashiCorpVaultBackend.Address
        var namespace: String?
        var authentication: VaultAuthentication
        var tls: VaultTLS
        var retry: RetryPolicy
        var timeout: Duration
        var renewMargin: Duration
    }

    private let settings: Settings
    private let label: String
    private let logger: Logger
    private let tls: LoadedTLS
    private let tokens: CredentialCache<String>

    init(settings: Settings, label: String, logger: Logger) {
        self.settings = settings
        self.label = label
        self.logger = logger
        let tls = LoadedTLS(settings.tls)
        self.tls = tls
        let exchange = VaultExchange(settings: settings, tls: tls)
        tokens = CredentialCache { current throws(SignerError) in
            try await VaultTokenSource(settings: settings, exchange: exchange, label: label, logger: logger)
                .credential(renewing: current)
        }
    }

    /// Renews the token while the gateway is idle (the backend's `Service`).
    func keepTokenFresh() async {
        await tokens.keepFresh(logger: logger, label: label)
    }

    /// One authenticated call: the answer's JSON, or nil for 204.
    func call(_ method: HTTPMethod, _ path: String, body: JSONValue? = nil) async throws(VaultCallError) -> JSONValue? {
        let exchange = VaultExchange(settings: settings, tls: tls)
        var retriedWithNewToken = false
        while true {
            let token: String
            do { token = try await tokens.secret() } catch { throw .init(error) }
            let answer: VaultExchange.Answer
            do {
                answer = try await exchange.send(method, path, token: token, body: body)
            } catch {
                throw .init(error)
            }
            if answer.status == 403, !retriedWithNewToken {
                retriedWithNewToken = true
                logger.debug(
                    "Vault refused the token; trying once more with a fresh one",
                    metadata: ["signer.backend": "\(label)", "vault.path": "\(path)"])
                tokens.invalidate(token)
                continue
            }
            return try Self.json(answer)
        }
    }

    static func json(_ answer: VaultExchange.Answer) throws(VaultCallError) -> JSONValue? {
        guard (200..<300).contains(answer.status) else {
            throw .init(VaultError.reply(status: answer.status, body: answer.body, retryAfter: answer.retryAfter))
        }
        guard answer.status != 204, !answer.body.isEmpty else { return nil }
        do {
            return try JSONParser.parse(answer.body)
        } catch {
            throw .init(
                .malformed("the answer is not JSON: \(String(decoding: answer.body.prefix(200), as: UTF8.self))"))
        }
    }
}

/// A Vault call's failure: Vault's answer, or a token that could not be had.
typealias VaultCallError = BackendCallError<VaultError>

/// The TLS configuration, built from its files once (a bad file is said at the first call, every call after).
final class LoadedTLS: Sendable {
    private let files: VaultTLS
    private let loaded = Mutex<Result<TLSConfiguration?, VaultError>?>(nil)

    init(_ files: VaultTLS) { self.files = files }

    func configuration() throws(VaultError) -> TLSConfiguration? {
        if let loaded = loaded.withLock({ $0 }) { return try loaded.get() }
        let result: Result<TLSConfiguration?, VaultError>
        do throws(VaultError) { result = .success(try files.configuration()) } catch { result = .failure(error) }
        loaded.withLock { $0 = result }
        return try result.get()
    }
}

/// One HTTP exchange with Vault, retried (429, 5xx but 500, lost connections) with jittered backoff.
struct VaultExchange: Sendable {
    typealias Answer = BackendHTTPAnswer

    let settings: VaultClient.Settings
    let tls: LoadedTLS

    func send(
        _ method: HTTPMethod, _ path: String, token: String?, body: JSONValue?
    ) async throws(VaultError) -> Answer {
        let tlsConfiguration = try tls.configuration()
        return try await settings.retry.run(
            { () async throws(VaultError) -> Answer in
                let answer = try await sendOnce(method, path, token: token, body: body, tls: tlsConfiguration)
                if VaultError.isRetryable(status: answer.status) {
                    throw VaultError.reply(status: answer.status, body: answer.body, retryAfter: answer.retryAfter)
                }
                return answer
            }, retryable: \.isRetryable, retryAfter: \.retryAfter)
    }

    private func sendOnce(
        _ method: HTTPMethod, _ path: String, token: String?, body: JSONValue?, tls: TLSConfiguration?
    ) async throws(VaultError) -> Answer {
        var request = HTTPClientRequest(url: settings.address.origin + "/v1/" + path)
        request.method = method
        request.tlsConfiguration = settings.address.isHTTPS ? tls : nil
        if let token { request.headers.add(name: "X-Vault-Token", value: token) }
        if let namespace = settings.namespace { request.headers.add(name: "X-Vault-Namespace", value: namespace) }
        request.headers.add(name: "X-Vault-Request", value: "true")
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: JSONWriter.bytes(body)))
        }
        return try await BackendHTTPAnswer.exchange(request, timeout: settings.timeout).mapError {
            VaultError.transport($0.description)
        }.get()
    }
}
