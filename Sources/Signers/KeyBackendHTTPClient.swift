import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import NIOSSL

extension HTTPClient {
    /// The HTTP client of the remote key backends (AWS KMS, Azure Key Vault, Vault). `HTTPClient.shared` keeps at
    /// most 8 connections per host, and each signature holds one for the backend's whole latency: at 20 ms that
    /// caps a backend near 400 signatures/s, below what one address's pipeline asks for. This one keeps up to 64 (as
    /// many as `signers.maxConcurrentSignatures` lets run by default). It lives as long as the process, like
    /// `shared`, so nothing has to shut it down.
    public static let keyBackends = HTTPClient(
        eventLoopGroupProvider: .singleton,
        configuration: HTTPClient.Configuration(
            connectionPool: .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 64)))
}

/// One HTTP exchange of a remote key backend, whole: status, headers and body (at most `limit` bytes).
public struct BackendHTTPAnswer: Sendable {
    public let status: Int
    public let headers: HTTPHeaders
    public let body: [UInt8]

    /// The server's `Retry-After`, if it sent one (seconds or an HTTP date).
    public var retryAfter: Duration? { headers.first(name: "Retry-After").flatMap { RetryAfter.parse($0) } }

    /// Sends `request` on `HTTPClient.keyBackends`; the failure is the link's (TLS named as such), said as text for
    /// the backend's own error type.
    public static func exchange(
        _ request: HTTPClientRequest, timeout: Duration, limit: Int = 4 << 20
    ) async -> Result<BackendHTTPAnswer, BackendTransportFailure> {
        do {
            let response = try await HTTPClient.keyBackends.execute(request, timeout: .init(timeout))
            let bytes = try await response.body.collect(upTo: limit)
            return .success(
                BackendHTTPAnswer(
                    status: Int(response.status.code), headers: response.headers,
                    body: Array(bytes.readableBytesView)))
        } catch let error as NIOSSLError {
            return .failure(BackendTransportFailure(description: "TLS: \(error)"))
        } catch {
            return .failure(BackendTransportFailure(description: "\(error)"))
        }
    }
}

/// The link to a remote backend failed (no answer to classify): always worth a retry.
public struct BackendTransportFailure: Error, Sendable, CustomStringConvertible {
    public let description: String
}
