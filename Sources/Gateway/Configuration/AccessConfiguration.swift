import Ethereum

/// Who may call the gateway (`access:`): the role of callers without a token, and the tokens, each stored as its
/// SHA-256 (`signer-gateway token new` makes one and prints the entry to paste).
public struct AccessSettings: Sendable, Hashable {
    /// The role of callers that present no token; `nil` (`none`): a token is required.
    public var anonymousRole: Role?
    /// Anonymous access on an address other than loopback is refused at start unless this is set.
    public var allowAnonymousBeyondLoopback = false
    public var tokens: [AccessGrant] = []
    /// Limits on what may be signed (`access.policies`).
    public var policies: [SigningPolicy] = []

    public init() {}
}

enum SigningPoliciesLoader {
    static let fields: Set<String> = [
        "name", "tokens", "addresses", "maxValuePerTransaction", "maxValuePerDay", "recipients", "chainIds",
        "maxFeePerGas", "typedDataContracts",
    ]

    /// The `access.policies` YAML list → policies; amounts in wei, decimal or 0x (quote those beyond 2^63).
    static func policies(from node: Any, source: String) throws(ConfigurationError) -> [SigningPolicy] {
        var policies: [SigningPolicy] = []
        for (name, label, mapping) in try NamedEntries.read(node, "access.policies", fields: fields, source: source) {
            var policy = SigningPolicy(name: name)
            if let tokens = mapping["tokens"] { policy.tokens = Set(AccessTokensLoader.strings(tokens)) }
            if let addresses = mapping["addresses"] {
                policy.addresses = Set(try AccessTokensLoader.addresses(addresses, "\(label).addresses"))
            }
            policy.maximumValuePerTransaction = try wei(mapping, "maxValuePerTransaction", label)
            policy.maximumValuePerDay = try wei(mapping, "maxValuePerDay", label)
            policy.maximumFeePerGas = try wei(mapping, "maxFeePerGas", label)
            if let recipients = mapping["recipients"] {
                policy.recipients = try AccessTokensLoader.strings(recipients).map {
                    (text: String) throws(ConfigurationError) -> SigningPolicy.Recipient in
                    let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
                    guard let address = try? Address(hex: parts[0]) else {
                        throw ConfigurationError("\(label).recipients: \"\(text)\" is not an address[:selector]")
                    }
                    guard parts.count == 2 else { return SigningPolicy.Recipient(address: address) }
                    guard let selector = try? Hex.decode(parts[1]), selector.count == 4 else {
                        throw ConfigurationError(
                            "\(label).recipients: \"\(parts[1])\" is not a 4-byte selector (0x…)")
                    }
                    return SigningPolicy.Recipient(address: address, selector: selector)
                }
            }
            if let chains = mapping["chainIds"] {
                policy.chainIDs = Set(
                    try AccessTokensLoader.strings(chains).map { (text: String) throws(ConfigurationError) -> UInt64 in
                        guard let chain = UInt64(text) else {
                            throw ConfigurationError("\(label).chainIds: \"\(text)\" is not a chain id")
                        }
                        return chain
                    })
            }
            if let contracts = mapping["typedDataContracts"] {
                policy.typedDataContracts = Set(
                    try AccessTokensLoader.addresses(contracts, "\(label).typedDataContracts"))
            }
            policies.append(policy)
        }
        return policies
    }

    private static func wei(
        _ mapping: [String: Any], _ key: String, _ entry: String
    ) throws(ConfigurationError) -> UInt256? {
        guard let node = mapping[key] else { return nil }
        let label = "\(entry).\(key)"
        let text = "\(node)".trimmingCharacters(in: .whitespaces)
        let value = text.hasPrefix("0x") ? try? UInt256(hexQuantity: text) : UInt256(decimal: text)
        guard let value else {
            throw ConfigurationError(
                "\(label): \"\(text)\" is not an amount in wei (decimal or 0x; quote large ones)")
        }
        return value
    }
}

enum AccessTokensLoader {
    static let fields: Set<String> = [
        "name", "role", "hash", "addresses", "methods", "requestsPerSecond", "transactionsPerSecond",
    ]

    /// The `access.tokens` YAML list → grants, each checked: a unique name, a role, a `sha256:` hash.
    static func grants(from node: Any, source: String) throws(ConfigurationError) -> [AccessGrant] {
        var grants: [AccessGrant] = []
        for (name, label, mapping) in try NamedEntries.read(node, "access.tokens", fields: fields, source: source) {
            guard let roleText = mapping["role"].map({ "\($0)" }), let role = Role(rawValue: roleText) else {
                throw ConfigurationError("\(label).role: one of user, admin")
            }
            guard let hashText = mapping["hash"].map({ "\($0)" }), let digest = TokenDigest(hashText) else {
                throw ConfigurationError(
                    "\(label).hash: sha256:<64 hex>, as `signer-gateway token new` prints (never the token itself)")
            }
            var grant = AccessGrant(name: name, role: role, digest: digest)
            if let addresses = mapping["addresses"] {
                grant.addresses = Set(try Self.addresses(addresses, "\(label).addresses"))
            }
            if let methods = mapping["methods"] { grant.methods = Set(strings(methods)) }
            grant.requestsPerSecond = try rate(mapping["requestsPerSecond"], "\(label).requestsPerSecond")
            grant.transactionsPerSecond = try rate(mapping["transactionsPerSecond"], "\(label).transactionsPerSecond")
            grants.append(grant)
        }
        return grants
    }

    static func addresses(_ node: Any, _ label: String) throws(ConfigurationError) -> [Address] {
        try strings(node).map { (text: String) throws(ConfigurationError) -> Address in
            guard let address = try? Address(hex: text) else {
                throw ConfigurationError("\(label): \"\(text)\" is not an address")
            }
            return address
        }
    }

    /// A YAML list, or one comma-separated string.
    static func strings(_ node: Any) -> [String] {
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

/// A YAML list of named mappings (`access.tokens`, `access.policies`): each entry a mapping with a `name` and only
/// the keys `fields` knows, errors naming the file, the list and the entry.
enum NamedEntries {
    static func read(
        _ node: Any, _ list: String, fields: Set<String>, source: String
    ) throws(ConfigurationError) -> [(name: String, label: String, mapping: [String: Any])] {
        guard let items = node as? [Any] else {
            throw ConfigurationError("\(source): \(list) must be a list of entries (- name: …)")
        }
        var entries: [(name: String, label: String, mapping: [String: Any])] = []
        for (index, item) in items.enumerated() {
            guard let mapping = item as? [String: Any] else {
                throw ConfigurationError("\(source): \(list)[\(index)] must be a mapping with a name")
            }
            let name = mapping["name"].map { "\($0)" } ?? ""
            let label = "\(source): \(list)[\(name.isEmpty ? String(index) : name)]"
            if let unknown = mapping.keys.sorted().first(where: { !fields.contains($0) }) {
                throw ConfigurationError(
                    "\(label): unknown key \"\(unknown)\" (known: \(fields.sorted().joined(separator: ", ")))")
            }
            guard !name.isEmpty else { throw ConfigurationError("\(label) has no name") }
            guard !entries.contains(where: { $0.name == name }) else {
                throw ConfigurationError("\(label): two entries are named \"\(name)\"; names must be unique")
            }
            entries.append((name, label, mapping))
        }
        return entries
    }
}
