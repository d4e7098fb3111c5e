/// Exponential backoff, the one used everywhere a failed attempt is retried (reconnecting to the node, retrying a
/// submission, a nonce sync or a resubscription): `initial`, doubling up to `maximum`; `reset` after a success.
public struct Backoff: Sendable, Hashable {
    public var initial: Duration
    public var maximum: Duration
    public private(set) var failures = 0

    public init(initial: Duration = .milliseconds(100), maximum: Duration = .seconds(5)) {
        self.initial = initial
        self.maximum = maximum
    }

    /// The delay before the next attempt; counts one more failure.
    public mutating func nextDelay() -> Duration {
        defer { failures += 1 }
        return delay(afterFailures: failures)
    }

    /// The delay after `failures` consecutive failures (0 → `initial`).
    public func delay(afterFailures failures: Int) -> Duration {
        var delay = initial
        for _ in 0..<min(failures, 30) {
            delay = delay * 2
            if delay >= maximum { return maximum }
        }
        return min(delay, maximum)
    }

    public mutating func reset() { failures = 0 }
}
