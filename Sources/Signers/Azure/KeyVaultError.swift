import Foundation
import JSON

/// Why a Key Vault or Entra ID call failed, classified by HTTP status and the error code the service names
/// (`error.code`, `error.innererror.code`, OAuth's `error`), never by message text.
enum KeyVaultError: Error, Sendable, CustomStringConvertible {
    /// Key Vault answered with an error: `{"error": {"code", "message", "innererror": {"code"}}}`.
    case service(status: Int, code: String, innerCode: String?, message: String, retryAfter: Duration?)
    /// The token endpoint or IMDS refused: OAuth's `{"error", "error_description"}`.
    case token(status: Int, code: String, description: String, retryAfter: Duration?)
    case transport(String)
    case malformed(String)
    /// A setting or secret that cannot be used (an unreadable secret file, a CA file that is not PEM).
    case configuration(String)

    static func answer(status: Int, body: [UInt8], retryAfter: Duration?) -> KeyVaultError {
        let json = try? JSONParser.parse(body)
        if let error = json?["error"], let code = error["code"]?.stringValue {
            return .service(
                status: status, code: code, innerCode: error["innererror"]?["code"]?.stringValue,
                message: error["message"]?.stringValue ?? "", retryAfter: retryAfter)
        }
        let text = String(decoding: body.prefix(200), as: UTF8.self)
        return .service(status: status, code: "HTTP\(status)", innerCode: nil, message: text, retryAfter: retryAfter)
    }

    static func tokenAnswer(status: Int, body: [UInt8], retryAfter: Duration?) -> KeyVaultError {
        let json = try? JSONParser.parse(body)
        if let code = json?["error"]?.stringValue {
            return .token(
                status: status, code: code, description: json?["error_description"]?.stringValue ?? "",
                retryAfter: retryAfter)
        }
        let text = String(decoding: body.prefix(200), as: UTF8.self)
        return .token(status: status, code: "HTTP\(status)", description: text, retryAfter: retryAfter)
    }

    /// Throttling, a service failure, a lost connection: trying again later can succeed.
    var isRetryable: Bool {
        switch self {
        case .transport: true
        case .malformed, .configuration: false
        case .service(let status, _, _, _, _), .token(let status, _, _, _):
            status == 429 || status >= 500
        }
    }

    var retryAfter: Duration? {
        switch self {
        case .service(_, _, _, _, let retryAfter), .token(_, _, _, let retryAfter): retryAfter
        default: nil
        }
    }

    var status: Int? {
        switch self {
        case .service(let status, _, _, _, _), .token(let status, _, _, _): status
        default: nil
        }
    }

    var code: String? {
        switch self {
        case .service(_, let code, _, _, _), .token(_, let code, _, _): code
        default: nil
        }
    }

    var innerCode: String? {
        if case .service(_, _, let inner, _, _) = self { return inner }
        return nil
    }

    var description: String {
        switch self {
        case .service(let status, let code, let inner, let message, _):
            "\(code)\(inner.map { "/\($0)" } ?? "") (HTTP \(status))" + (message.isEmpty ? "" : ": \(message)")
        case .token(let status, let code, let description, _):
            "\(code) (HTTP \(status))" + (description.isEmpty ? "" : ": \(description)")
        case .transport(let detail): "cannot reach Azure: \(detail)"
        case .malformed(let detail): detail
        case .configuration(let detail): detail
        }
    }
}
