/// A credential a remote backend sends with every call and that runs out: an Entra ID access token, a Vault token.
/// `secret` never reaches a log line (`description` hides it).
public struct ExpiringCredential<Secret: Sendable & Equatable>: Sendable, CustomStringConvertible {
    public let secret: Secret
    /// When the issuer stops accepting it; `nil`: never (a Vault root token, a token without a TTL).
    public let expiresAt: ContinuousClock.Instant?
    /// When to get a new one: early enough that no call waits for it and no call carries a token in its last
    /// seconds.
    public let refreshAt: ContinuousClock.Instant?
    /// How long it was valid for when issued (or last renewed); `nil`: no limit.
    public let lifetime: Duration?
    /// Whether it may be renewed rather than replaced (a Vault token).
    public let renewable: Bool

    /// A credential valid for `lifetime` from `issued`, refreshed `margin` before it ends, or after two thirds of its
    /// life when that comes first (a 60 s Vault token is renewed after 40 s, a 1 h Entra token 5 min before its end).
    public init(
        secret: Secret, lifetime: Duration?, issued: ContinuousClock.Instant, margin: Duration = .seconds(300),
        renewable: Bool = false
    ) {
        self.secret = secret
        self.renewable = renewable
        self.lifetime = lifetime
        guard let lifetime else {
            expiresAt = nil
            refreshAt = nil
            return
        }
        let expiresAt = issued + lifetime
        self.expiresAt = expiresAt
        refreshAt = expiresAt - min(margin, lifetime / 3)
    }

    public func isExpired(at now: ContinuousClock.Instant) -> Bool {
        expiresAt.map { now >= $0 } ?? false
    }

    public var description: String {
        "credential(<redacted>, expires \(expiresAt.map { "\($0)" } ?? "never"))"
    }
}
