import Ethereum

/// Who may call the gateway (`access:`): the role of callers without a token, and the tokens, each stored as its
/// SHA-256 (`signer-gateway token new` makes one and prints the entry to paste).
public struct AccessSettings: Sendable, Hashable {
    /// The role of callers that present no token; `nil` (`none`): a token is required.
    public var anonymousRole: Role?
    /// Anonymous access on an address other than loopback is refused at start unless this is set.
    public var allowAnonymousBeyondLoopback = false
    public var tokens: [AccessGrant] = []

    public init() {}
}

enum AccessTokensLoader {
    static let fields: Set<String> = [
        "name", "role", "hash", "addresses", "methods", "requestsPerSecond", "transactionsPerSecond",
    ]

    /// The `access.tokens` YAML list → grants, each checked: a unique name, a role, a `sha256:` hash.
    static func grants(from node: Any, source: String) throws(ConfigurationError) -> [AccessGrant] {
        guard let list = node as? [Any] else {
            throw ConfigurationError("\(source): access.tokens must be a list of entries (- name: … role: … hash: …)")
        }
        var grants: [AccessGrant] = []
        for (index, item) in list.enumerated() {
            guard let mapping = item as? [String: Any] else {
                throw ConfigurationError("\(source): access.tokens[\(index)] must be a mapping with name, role, hash")
            }
            let name = mapping["name"].map { "\($0)" } ?? ""
            let label = "\(source): access.tokens[\(name.isEmpty ? String(index) : name)]"
            if let unknown = mapping.keys.sorted().first(where: { !fields.contains($0) }) {
                throw ConfigurationError(
                    "\(label): unknown key \"\(unknown)\" (known: \(fields.sorted().joined(separator: ", ")))")
            }
            guard !name.isEmpty else { throw ConfigurationError("\(label) has no name") }
            guard let roleText = mapping["role"].map({ "\($0)" }), let role = Role(rawValue: roleText) else {
                throw ConfigurationError("\(label).role: one of user, admin")
            }
            guard let hashText = mapping["hash"].map({ "\($0)" }), let digest = TokenDigest(hashText) else {
                throw ConfigurationError(
                    "\(label).hash: sha256:<64 hex>, as `signer-gateway token new` prints (never the token itself)")
            }
            var grant = AccessGrant(name: name, role: role, digest: digest)
            if let addresses = mapping["addresses"] {
                var set: Set<Address> = []
                for text in strings(addresses) {
                    guard let address = try? Address(hex: text) else {
                        throw ConfigurationError("\(label).addresses: \"\(text)\" is not an address")
                    }
                    set.insert(address)
                }
                grant.addresses = set
            }
            if let methods = mapping["methods"] { grant.methods = Set(strings(methods)) }
            grant.requestsPerSecond = try rate(mapping["requestsPerSecond"], "\(label).requestsPerSecond")
            grant.transactionsPerSecond = try rate(mapping["transactionsPerSecond"], "\(label).transactionsPerSecond")
            guard !grants.contains(where: { $0.name == name }) else {
                throw ConfigurationError("\(label): two tokens are named \"\(name)\"; names must be unique")
            }
            grants.append(grant)
        }
        return grants
    }

    /// A YAML list, or one comma-separated string.
    private static func strings(_ node: Any) -> [String] {
        let items = (node as? [Any])?.map { "\($0)" } ?? "\(node)".split(separator: ",").map(String.init)
        return items.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    private static func rate(_ node: Any?, _ label: String) throws(ConfigurationError) -> Double? {
        guard let node else { return nil }
        guard let value = Double("\(node)"), value > 0 else {
            throw ConfigurationError("\(label): \"\(node)\" is not a positive number")
        }
        return value
    }
}
