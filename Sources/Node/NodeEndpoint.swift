/// Where the node listens: `ws://host:port/path` or `wss://…`.
public struct NodeEndpoint: Sendable, Hashable, CustomStringConvertible {
    public enum Scheme: String, Sendable { case ws, wss, http, https }

    public var scheme: Scheme
    public var host: String
    public var port: Int
    public var path: String

    public init(scheme: Scheme, host: String, port: Int, path: String = "/") {
        self.scheme = scheme
        self.host = host
        self.port = port
        self.path = path
    }

    /// Parses `scheme://host[:port][/path]`; IPv6 hosts in brackets.
    public init?(url: String) {
        guard let separator = url.firstRange(of: "://"),
            let scheme = Scheme(rawValue: url[..<separator.lowerBound].lowercased())
        else { return nil }
        let rest = url[separator.upperBound...]
        let authorityEnd = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        let path = authorityEnd == rest.endIndex ? "/" : String(rest[authorityEnd...])
        let defaultPort = (scheme == .wss || scheme == .https) ? 443 : 80
        var host = Substring(authority)
        var port = defaultPort
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") {
                guard let parsed = Int(after.dropFirst()) else { return nil }
                port = parsed
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            guard let parsed = Int(authority[authority.index(after: colon)...]) else { return nil }
            port = parsed
        }
        guard !host.isEmpty, (1...65535).contains(port) else { return nil }
        self.init(scheme: scheme, host: String(host), port: port, path: path)
    }

    public var usesTLS: Bool { scheme == .wss || scheme == .https }
    public var isWebSocket: Bool { scheme == .ws || scheme == .wss }

    /// The Host header value (the port is included when it is not the scheme's default).
    public var hostHeader: String {
        let bracketed = host.contains(":") ? "[\(host)]" : host
        let defaultPort = usesTLS ? 443 : 80
        return port == defaultPort ? bracketed : "\(bracketed):\(port)"
    }

    /// The full URL, path included: only for making requests, never for printing (providers put API keys in it).
    public var url: String { "\(scheme.rawValue)://\(hostHeader)\(path)" }

    /// Scheme, host and port only: what logs, errors and `check-config` show.
    public var redacted: String {
        "\(scheme.rawValue)://\(hostHeader)" + (path == "/" || path.isEmpty ? "/" : "/<redacted>")
    }

    public var description: String { redacted }
}
