import Foundation
import JSON

/// Why a Vault call failed, classified by HTTP status and the shape of Vault's answer (`{"errors": […]}`), never by
/// message text (plugin messages are Go error strings, not a vocabulary).
enum VaultError: Error, Sendable, CustomStringConvertible {
    /// Vault answered with an error status; `errors` as given (a 404 from a LIST of nothing carries none).
    case answer(status: Int, errors: [String], retryAfter: Duration?)
    case transport(String)
    case malformed(String)
    /// A setting or secret that cannot be used (an unreadable token file, a CA file that is not PEM).
    case configuration(String)

    static func reply(status: Int, body: [UInt8], retryAfter: Duration?) -> VaultError {
        if let errors = (try? JSONParser.parse(body))?["errors"]?.arrayValue {
            return .answer(status: status, errors: errors.compactMap(\.stringValue), retryAfter: retryAfter)
        }
        let text = String(decoding: body.prefix(200), as: UTF8.self)
        return .answer(status: status, errors: text.isEmpty ? [] : [text], retryAfter: retryAfter)
    }

    /// Throttling (429), a sealed or standby node (503), a proxy that lost it (502, 504), a performance standby not
    /// yet at the required index (412), a lost connection. A 500 is not: the ethsign plugin answers its own refusals
    /// with 500, and they do not change on retry.
    var isRetryable: Bool {
        switch self {
        case .transport: true
        case .malformed, .configuration: false
        case .answer(let status, _, _): Self.isRetryable(status: status)
        }
    }

    static func isRetryable(status: Int) -> Bool { [412, 429, 502, 503, 504].contains(status) }

    var status: Int? {
        if case .answer(let status, _, _) = self { return status }
        return nil
    }

    var retryAfter: Duration? {
        if case .answer(_, _, let retryAfter) = self { return retryAfter }
        return nil
    }

    /// Vault's messages, each on one line (go-multierror wraps plugin errors as `1 error occurred:\n\t* …\n\n`).
    var messages: [String] {
        guard case .answer(_, let errors, _) = self else { return [] }
        return errors.map { error in
            error.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
                .map { $0.hasPrefix("* ") ? String($0.dropFirst(2)) : $0 }
                .filter { !$0.isEmpty && !($0.hasSuffix("error occurred:") || $0.hasSuffix("errors occurred:")) }
                .joined(separator: "; ")
        }
    }

    var description: String {
        switch self {
        case .answer(let status, _, _):
            let text = messages.joined(separator: "; ")
            return "HTTP \(status)" + (text.isEmpty ? "" : ": \(text)")
        case .transport(let detail): return "cannot reach Vault: \(detail)"
        case .malformed(let detail): return detail
        case .configuration(let detail): return detail
        }
    }
}
