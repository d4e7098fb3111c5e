/// A Key Vault key by name, and by version when pinned: configured as `name` or `name/version`, found in a `kid`
/// (`https://{vault}/keys/{name}/{version}`). The account's key reference is always `name/version`: it signs with
/// the version whose public key made the address.
struct KeyIdentifier: Sendable, Hashable, CustomStringConvertible {
    let name: String
    let version: String?

    /// `name` or `name/version`; names are 1–127 of `0-9a-zA-Z-` (Key Vault's rule), versions 32 hex digits in
    /// practice, checked here only to be path-safe.
    init?(reference: String) {
        let parts = reference.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard (1...2).contains(parts.count), Self.isName(parts[0]) else { return nil }
        if parts.count == 2 {
            guard Self.isName(parts[1]) else { return nil }
            version = parts[1]
        } else {
            version = nil
        }
        name = parts[0]
    }

    /// The name and version in a `kid` path: `/keys/{name}[/{version}]`.
    init?(kidPath path: String) {
        let parts = path.split(separator: "/").map(String.init)
        guard parts.count >= 2, parts.count <= 3, parts[0] == "keys" else { return nil }
        self.init(reference: parts.dropFirst().joined(separator: "/"))
    }

    /// `/keys/{name}/{version}`, or `/keys/{name}/` (the latest version).
    var path: String { "/keys/\(name)/\(version ?? "")" }

    var description: String { version.map { "\(name)/\($0)" } ?? name }

    private static func isName(_ text: String) -> Bool {
        (1...127).contains(text.count) && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
    }
}
