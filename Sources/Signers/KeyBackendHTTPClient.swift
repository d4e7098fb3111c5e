import AsyncHTTPClient

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
