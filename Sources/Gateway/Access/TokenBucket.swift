import Signers

/// A token bucket: `rate` tokens a second, at most one second's worth saved up.
struct TokenBucket: Sendable {
    let rate: Double
    private var tokens: Double
    private var last: ContinuousClock.Instant?

    init(rate: Double) {
        self.rate = rate
        tokens = max(rate, 1)
    }

    /// Takes one token; `nil` if there was one, else how long until there is.
    mutating func take(at now: ContinuousClock.Instant) -> Duration? {
        if let last {
            tokens = min(max(rate, 1), tokens + (now - last).inSeconds * rate)
        }
        last = now
        guard tokens >= 1 else { return .seconds((1 - tokens) / rate) }
        tokens -= 1
        return nil
    }
}
