import Foundation

/// Who a connection is, decided once from what it presents: `Authorization: Bearer <token>` (HTTP requests and the
/// WebSocket upgrade), or `?token=<token>` on the upgrade's URL for browsers, whose WebSocket API cannot set
/// headers. Without a token the caller is anonymous, which is allowed only where configured.
public struct AccessControl: Sendable {
    public var grants: [AccessGrant]
    /// The role of callers without a token; `nil`: they are refused.
    public var anonymousRole: Role?

    public init(grants: [AccessGrant], anonymousRole: Role?) {
        self.grants = grants
        self.anonymousRole = anonymousRole
    }

    /// Why a connection was refused: said to the caller (HTTP 401, JSON-RPC 4100), never naming a token.
    public struct Refusal: Error, Sendable, Hashable, CustomStringConvertible {
        public let description: String
    }

    /// The identity for a request's `Authorization` header and URI (`/path?token=…`).
    public func authenticate(authorization: String?, uri: String) -> Result<Identity, Refusal> {
        let presented = Self.bearer(authorization) ?? Self.queryToken(uri)
        guard let presented else {
            guard let anonymousRole else {
                return .failure(
                    Refusal(
                        description: "a token is required: send Authorization: Bearer <token> (or ?token= on a "
                            + "browser's WebSocket URL)"))
            }
            return .success(Identity(name: "anonymous", role: anonymousRole))
        }
        let digest = TokenDigest(of: presented)
        // Every grant is compared (no early exit), so the time taken does not say which one matched.
        var found: AccessGrant?
        for grant in grants where grant.digest.matches(digest) { found = found ?? grant }
        guard let grant = found else { return .failure(Refusal(description: "the token is not valid")) }
        return .success(
            Identity(name: grant.name, role: grant.role, addresses: grant.addresses, methods: grant.methods))
    }

    static func bearer(_ header: String?) -> String? {
        guard let header else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = parts[1].trimmingCharacters(in: .whitespaces)
        return token.isEmpty ? nil : token
    }

    static func queryToken(_ uri: String) -> String? {
        guard let query = uri.split(separator: "?", maxSplits: 1).dropFirst().first else { return nil }
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2, parts[0] == "token", let value = String(parts[1]).removingPercentEncoding,
                !value.isEmpty
            {
                return value
            }
        }
        return nil
    }
}
