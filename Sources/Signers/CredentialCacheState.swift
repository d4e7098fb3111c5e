/// The decisions of a credential cache, as a value: events in, actions out; the owner (`CredentialCache`) runs the
/// refresh and keeps the clock.
///
/// Invariants:
/// - at most one refresh is in flight (`refreshing`): a thousand signatures arriving with an expired token cause one
///   token request, and all of them wait for it;
/// - a credential that is due for refresh but still valid is used while the refresh runs in the background, so no
///   call waits for a token except the first and those after an expiry or a refusal;
/// - a failed background refresh is not retried before `retryNotBefore` (an authority outage must not turn every
///   signature into another token request), while the credential in hand still serves;
/// - `invalidate` drops the credential only if it is still the one that was refused: a 401 answered to an old
///   token must not throw away the new one another call already fetched.
public struct CredentialCacheState<Secret: Sendable & Equatable>: Sendable {
    public enum Acquisition: Sendable, Equatable {
        /// Send this.
        case use(Secret)
        /// Send this, and start a refresh in the background.
        case useAndRefresh(Secret)
        /// Nothing valid in hand: wait for the refresh (`start`: this caller starts it).
        case wait(start: Bool)
    }

    public private(set) var current: ExpiringCredential<Secret>?
    public private(set) var refreshing = false
    private var retryNotBefore: ContinuousClock.Instant?

    public init() {}

    public mutating func acquire(at now: ContinuousClock.Instant) -> Acquisition {
        if let current, !current.isExpired(at: now) {
            guard let refreshAt = current.refreshAt, now >= refreshAt, !refreshing,
                retryNotBefore.map({ now >= $0 }) ?? true
            else { return .use(current.secret) }
            refreshing = true
            return .useAndRefresh(current.secret)
        }
        if refreshing { return .wait(start: false) }
        refreshing = true
        return .wait(start: true)
    }

    /// A refresh the owner starts without a caller waiting (its keep-fresh loop): `false` if one is running.
    public mutating func startRefresh() -> Bool {
        guard !refreshing else { return false }
        refreshing = true
        return true
    }

    public mutating func refreshed(_ credential: ExpiringCredential<Secret>) {
        current = credential
        refreshing = false
        retryNotBefore = nil
    }

    public mutating func refreshFailed(at now: ContinuousClock.Instant, backoff: Duration) {
        refreshing = false
        retryNotBefore = now + backoff
    }

    /// The issuer refused `secret` (a 401, a revoked token): the next call fetches a new one.
    public mutating func invalidate(_ secret: Secret) {
        if current?.secret == secret { current = nil }
    }

    /// When the keep-fresh loop should next refresh: `nil` when there is nothing to keep fresh (no credential yet,
    /// one that never expires, or a refresh already running).
    public func nextRefresh() -> ContinuousClock.Instant? {
        guard !refreshing, let refreshAt = current?.refreshAt else { return nil }
        return max(refreshAt, retryNotBefore ?? refreshAt)
    }
}
