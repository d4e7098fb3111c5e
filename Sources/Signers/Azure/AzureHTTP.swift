import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import Signers

/// One HTTP exchange with Azure (the vault, the authority, IMDS) on the process's shared `HTTPClient`: a request's
/// own TLS configuration (trusting a CA file) picks its own connection pool there, so no client needs shutting down.
struct AzureHTTP: Sendable {
    struct Answer: Sendable {
        let status: Int
        let headers: HTTPHeaders
        let body: [UInt8]

        var retryAfter: Duration? { headers.first(name: "Retry-After").flatMap { RetryAfter.parse($0) } }
    }

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
        do {
            let response = try await HTTPClient.keyBackends.execute(request, timeout: .init(timeout))
            let bytes = try await response.body.collect(upTo: 4 << 20)
            return Answer(
                status: Int(response.status.code), headers: response.headers, body: Array(bytes.readableBytesView))
        } catch let error as NIOSSLError {
            throw .transport("TLS: \(error)")
        } catch {
            throw .transport("\(error)")
        }
    }

    /// Runs `attempt` until it succeeds, fails for good, or the retry policy gives up: throttling (429, with the
    /// server's `Retry-After`), 5xx and lost connections are retried with jittered backoff.
    func withRetries<Value>(_ attempt: () async throws(KeyVaultError) -> Value) async throws(KeyVaultError) -> Value {
        var retries = 0
        while true {
            do throws(KeyVaultError) {
                return try await attempt()
            } catch {
                retries += 1
                guard error.isRetryable, !Task.isCancelled,
                    let delay = retry.delay(beforeRetry: retries, retryAfter: error.retryAfter)
                else { throw error }
                try? await Task.sleep(for: delay)
            }
        }
    }
}
