import AsyncHTTPClient
import Foundation
import JSON
import NIOCore
import NIOHTTP1
import Signers

/// AWS KMS's JSON 1.1 protocol: `POST /` with `X-Amz-Target: TrentService.<Operation>`, signed with SigV4, retried
/// with jittered backoff when AWS throttles or fails (429, 5xx, `ThrottlingException`, a lost connection).
struct KMSClient: Sendable {
    let endpoint: AWSKMSBackend.Endpoint
    let region: String
    let credentials: AWSCredentials.Source
    let maximumRetries: Int
    let requestTimeout: Duration

    func call(_ operation: String, _ body: JSONValue) async throws(KMSError) -> JSONValue {
        // Full jitter from 100 ms, doubling up to 3.2 s (AWS's advice).
        let policy = RetryPolicy(
            maximumRetries: maximumRetries, baseDelay: .milliseconds(100), maximumDelay: .milliseconds(3_200))
        return try await policy.run(
            { () async throws(KMSError) -> JSONValue in try await callOnce(operation, body) },
            retryable: \.isRetryable)
    }

    private func callOnce(_ operation: String, _ body: JSONValue) async throws(KMSError) -> JSONValue {
        let resolved: AWSCredentials
        do { resolved = try credentials.resolve() } catch { throw .credentials("\(error)") }
        let payload = JSONWriter.bytes(body)
        let headers = [
            ("Content-Type", "application/x-amz-json-1.1"), ("Host", endpoint.hostHeader),
            ("X-Amz-Target", "TrentService.\(operation)"),
        ]
        let signer = SigV4(credentials: resolved, region: region, service: "kms")
        var request = HTTPClientRequest(url: endpoint.url)
        request.method = .POST
        for (name, value) in headers + signer.signingHeaders(headers: headers, body: payload, date: Date()) {
            request.headers.replaceOrAdd(name: name, value: value)
        }
        request.body = .bytes(ByteBuffer(bytes: payload))
        let answer: BackendHTTPAnswer
        switch await BackendHTTPAnswer.exchange(request, timeout: requestTimeout, limit: 1 << 20) {
        case .success(let received): answer = received
        case .failure(let failure): throw .transport(failure.description)
        }
        let text = String(decoding: answer.body, as: UTF8.self)
        guard answer.status == 200 else { throw KMSError.answer(status: answer.status, body: text) }
        do {
            return try JSONParser.parse(answer.body)
        } catch {
            throw .malformed("\(operation): the answer is not JSON: \(text.prefix(200))")
        }
    }
}

/// Why a KMS call failed, classified by the error type AWS names (never by message text).
enum KMSError: Error, Sendable, CustomStringConvertible {
    /// AWS answered with an error: its `__type` (without the namespace) and message.
    case service(status: Int, type: String, message: String)
    case transport(String)
    case malformed(String)
    case credentials(String)

    /// An error answer: JSON `{"__type": "…#NotFoundException", "message": …}` from KMS, XML or plain text from
    /// whatever stands in front of it (a 403 from the signature check, a proxy's 502).
    static func answer(status: Int, body: String) -> KMSError {
        if let json = try? JSONParser.parse(body), let type = json["__type"]?.stringValue {
            let message = json["message"]?.stringValue ?? json["Message"]?.stringValue ?? ""
            return .service(status: status, type: String(type.split(separator: "#").last ?? ""), message: message)
        }
        if let code = body.between("<Code>", "</Code>") {
            return .service(status: status, type: code, message: body.between("<Message>", "</Message>") ?? "")
        }
        return .service(status: status, type: "HTTP\(status)", message: String(body.prefix(200)))
    }

    var isRetryable: Bool {
        switch self {
        case .transport: true
        case .malformed, .credentials: false
        case .service(let status, let type, _):
            status == 429 || status >= 500 || type == "ThrottlingException" || type == "ThrottledException"
                || type == "RequestLimitExceeded" || type == "KMSInternalException" || type == "DependencyTimeoutException"
        }
    }

    /// The credentials themselves were refused: only the operator can fix that.
    var isAuthentication: Bool {
        guard case .service(_, let type, _) = self else { return false }
        return ["SignatureDoesNotMatch", "UnrecognizedClientException", "InvalidSignatureException",
            "IncompleteSignature", "ExpiredTokenException", "InvalidClientTokenId", "MissingAuthenticationToken",
        ].contains(type)
    }

    var type: String? {
        guard case .service(_, let type, _) = self else { return nil }
        return type
    }

    var description: String {
        switch self {
        case .service(let status, let type, let message): "\(type) (HTTP \(status))" + (message.isEmpty ? "" : ": \(message)")
        case .transport(let detail): "cannot reach KMS: \(detail)"
        case .malformed(let detail): detail
        case .credentials(let detail): "credentials: \(detail)"
        }
    }
}

extension String {
    fileprivate func between(_ start: String, _ end: String) -> String? {
        guard let from = range(of: start), let to = range(of: end, range: from.upperBound..<endIndex) else { return nil }
        return String(self[from.upperBound..<to.lowerBound])
    }
}
