import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

/// Plain HTTP(S) calls from tests to the test servers' control and setup endpoints, trusting their own CA file.
public enum TestHTTP {
    public struct Answer: Sendable {
        public let status: Int
        public let body: [UInt8]

        public var json: Any? { try? JSONSerialization.jsonObject(with: Data(body)) }
        public var text: String { String(decoding: body, as: UTF8.self) }
    }

    public static func send(
        _ method: HTTPMethod, _ url: String, headers: [(String, String)] = [], body: [UInt8]? = nil,
        caFile: String? = nil, timeout: Duration = .seconds(30)
    ) async throws -> Answer {
        var request = HTTPClientRequest(url: url)
        request.method = method
        if let caFile {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .file(caFile)
            request.tlsConfiguration = tls
        }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let response = try await HTTPClient.shared.execute(request, timeout: .init(timeout))
        let bytes = try await response.body.collect(upTo: 8 << 20)
        return Answer(status: Int(response.status.code), body: Array(bytes.readableBytesView))
    }

    /// A JSON object posted, the JSON answer returned (any status).
    public static func postJSON(
        _ url: String, _ object: [String: Any], headers: [(String, String)] = [], caFile: String? = nil
    ) async throws -> Answer {
        let body = try JSONSerialization.data(withJSONObject: object)
        return try await send(
            .POST, url, headers: [("Content-Type", "application/json")] + headers, body: Array(body), caFile: caFile)
    }
}
