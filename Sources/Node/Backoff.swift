/// Exponential backoff between reconnection attempts: `initial`, doubling up to `maximum`; reset once connected.
public struct ReconnectBackoff: Sendable, Hashable {
    public var initial: Duration
    public var maximum: Duration
    private(set) var attempt = 0

    public init(initial: Duration = .milliseconds(100), maximum: Duration = .seconds(5)) {
        self.initial = initial
        self.maximum = maximum
    }

    /// The delay before the next attempt.
    public mutating func nextDelay() -> Duration {
        defer { attempt += 1 }
        var delay = initial
        for _ in 0..<min(attempt, 30) {
            delay = delay * 2
            if delay >= maximum { return maximum }
        }
        return min(delay, maximum)
    }

    public mutating func reset() { attempt = 0 }
}
