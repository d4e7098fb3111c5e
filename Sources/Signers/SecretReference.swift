import Foundation

/// Where a secret comes from. Configuration names secrets by reference so that they never sit in a YAML file or a
/// log line: `env:NAME` (an environment variable) or `file:/path` (the file's contents, one trailing newline
/// dropped). A bare value is accepted only for throwaway development keystores.
public enum SecretReference: Sendable, Hashable, CustomStringConvertible {
    case environment(String)
    case file(String)
    case literal(String)

    public init(_ text: String) {
        if text.hasPrefix("env:") {
            self = .environment(String(text.dropFirst(4)))
        } else if text.hasPrefix("file:") {
            self = .file(String(text.dropFirst(5)))
        } else {
            self = .literal(text)
        }
    }

    /// `env:NAME` when that variable is set now, else nil (optional secrets such as an AWS session token).
    public static func environmentIfSet(
        _ name: String, environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> SecretReference? {
        environment[name] == nil ? nil : .environment(name)
    }

    public func resolve(
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(SignerError) -> [UInt8] {
        switch self {
        case .environment(let name):
            guard let value = environment[name] else { throw .configuration("environment variable \(name) is not set") }
            return Array(value.utf8)
        case .file(let path):
            guard var data = FileManager.default.contents(atPath: path) else {
                throw .configuration("cannot read secret file \(path)")
            }
            if data.last == 0x0A { data.removeLast() }
            if data.last == 0x0D { data.removeLast() }
            return Array(data)
        case .literal(let value):
            return Array(value.utf8)
        }
    }

    /// Never the secret itself.
    public var description: String {
        switch self {
        case .environment(let name): "env:\(name)"
        case .file(let path): "file:\(path)"
        case .literal: "<redacted>"
        }
    }
}
