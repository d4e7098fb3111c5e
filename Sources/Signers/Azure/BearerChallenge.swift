import Foundation

/// Key Vault's 401 challenge, `WWW-Authenticate: Bearer authorization="https://login.microsoftonline.com/{tenant}",
/// resource="https://vault.azure.net"` (some services say `authorization_uri` and `scope` instead): where a token
/// comes from and what it must be for.
struct BearerChallenge: Sendable, Hashable {
    /// The authority URL, tenant included.
    let authorization: String?
    /// The resource a token must be issued for (`scope` without its `/.default`).
    let resource: String?

    /// The `Bearer` challenge among the header's challenges; nil if there is none.
    init?(header: String) {
        guard let parameters = Self.bearerParameters(header) else { return nil }
        authorization = parameters["authorization"] ?? parameters["authorization_uri"]
        if let resource = parameters["resource"] {
            self.resource = resource
        } else if let scope = parameters["scope"] {
            self.resource = scope.hasSuffix("/.default") ? String(scope.dropLast("/.default".count)) : scope
        } else {
            resource = nil
        }
    }

    /// `https://host[:port]` of the authority, lower-cased.
    var authorityHost: String? {
        guard let authorization, let components = URLComponents(string: authorization),
            let scheme = components.scheme?.lowercased(), let host = components.host?.lowercased(), !host.isEmpty
        else { return nil }
        return components.port.map { "\(scheme)://\(host):\($0)" } ?? "\(scheme)://\(host)"
    }

    /// The tenant: the authority URL's first path segment.
    var tenant: String? {
        guard let authorization, let components = URLComponents(string: authorization) else { return nil }
        return components.path.split(separator: "/").first.map(String.init)
    }

    /// RFC 9110 §11.6.1 challenges: `scheme token68` or `scheme param="value", param=value, …`, several per header.
    /// The parameters of the first `Bearer` one, names lower-cased.
    private static func bearerParameters(_ header: String) -> [String: String]? {
        var scanner = Substring(header)
        var parameters: [String: String]?
        while true {
            skip(&scanner, while: { $0 == " " || $0 == "," || $0 == "\t" })
            guard let word = token(&scanner) else { return parameters }
            skip(&scanner, while: { $0 == " " || $0 == "\t" })
            if scanner.first == "=" {
                // A parameter of the challenge being read.
                scanner.removeFirst()
                skip(&scanner, while: { $0 == " " || $0 == "\t" })
                guard let value = quotedString(&scanner) ?? token(&scanner) else { return parameters }
                if parameters != nil, parameters?[word.lowercased()] == nil {
                    parameters?[word.lowercased()] = value
                }
            } else {
                // A new challenge: stop at the one after Bearer, start at Bearer.
                if parameters != nil { return parameters }
                if word.lowercased() == "bearer" { parameters = [:] }
            }
        }
    }

    private static func skip(_ scanner: inout Substring, while predicate: (Character) -> Bool) {
        while let first = scanner.first, predicate(first) { scanner.removeFirst() }
    }

    private static func token(_ scanner: inout Substring) -> String? {
        let allowed = Set("!#$%&'*+-.^_`|~/:").union("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        let word = scanner.prefix { allowed.contains($0) }
        guard !word.isEmpty else { return nil }
        scanner.removeFirst(word.count)
        return String(word)
    }

    private static func quotedString(_ scanner: inout Substring) -> String? {
        guard scanner.first == "\"" else { return nil }
        scanner.removeFirst()
        var value = ""
        while let character = scanner.first {
            scanner.removeFirst()
            switch character {
            case "\"": return value
            case "\\":
                guard let escaped = scanner.first else { return nil }
                scanner.removeFirst()
                value.append(escaped)
            default: value.append(character)
            }
        }
        return nil
    }
}
