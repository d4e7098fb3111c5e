import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import Signers

/// One HTTP exchange with Azure (the vault, the authority, IMDS) on the key backends' shared `HTTPClient`: a
/// request's own TLS configuration (trusting a CA file) picks its own connection pool there, so no client needs
/// shutting down.
struct AzureHTTP: Sendable {
    typealias Answer = BackendHTTPAnswer

    /// `nil`: the system's trust roots. With a CA file, that file and nothing else is trusted.
    let tls: TLSConfiguration?
    let timeout: Duration
    let retry: RetryPolicy

    init(caFile: String?, timeout: Duration, retry: RetryPolicy) {
        if let caFile {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .file(caFile)
            self.tls = tls
        } else {
            tls = nil
        }
        self.timeout = timeout
        self.retry = retry
    }

    func send(
        _ method: HTTPMethod, _ url: String, headers: [(String, String)] = [], body: [UInt8]? = nil
    ) async throws(KeyVaultError) -> Answer {
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.tlsConfiguration = url.hasPrefix("https:") ? tls : nil
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        return try await BackendHTTPAnswer.exchange(request, timeout: timeout).mapError {
            KeyVaultError.transport($0.description)
        }.get()
    }

    /// Runs `attempt` until it succeeds, fails for good, or the retry policy gives up: throttling (429, with the
    /// server's `Retry-After`), 5xx and lost connections are retried with jittered backoff.
    func withRetries<Value>(_ attempt: () async throws(KeyVaultError) -> Value) async throws(KeyVaultError) -> Value {
        try await retry.run(attempt, retryable: \.isRetryable, retryAfter: \.retryAfter)
    }
}
