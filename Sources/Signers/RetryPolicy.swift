/// How a remote backend's client retries a throttled or failed call: a bounded number of times, each after a delay
/// with full jitter (AWS's and Azure's advice: many gateways throttled together must not come back together), or
/// after exactly the delay the server asked for (`Retry-After`) when it asked for one it is worth waiting.
public struct RetryPolicy: Sendable, Hashable {
    /// Retries after the first attempt.
    public var maximumRetries: Int
    /// The ceiling of the first retry's random delay; it doubles each time up to `maximumDelay`.
    public var baseDelay: Duration
    public var maximumDelay: Duration
    /// A server that asks for a longer wait than this is not waited for: the call fails as retryable at once, and
    /// the pipeline (which has a deadline of its own) decides when to try again.
    public var maximumRetryAfter: Duration

    public init(
        maximumRetries: Int = 4, baseDelay: Duration = .milliseconds(100), maximumDelay: Duration = .seconds(3),
        maximumRetryAfter: Duration = .seconds(5)
    ) {
        self.maximumRetries = maximumRetries
        self.baseDelay = baseDelay
        self.maximumDelay = maximumDelay
        self.maximumRetryAfter = maximumRetryAfter
    }

    /// The wait before retry number `attempt` (1 for the first retry), or nil: give up. `retryAfter` is what the
    /// server asked for, if anything.
    public func delay(
        beforeRetry attempt: Int, retryAfter: Duration?,
        using generator: inout some RandomNumberGenerator
    ) -> Duration? {
        guard attempt >= 1, attempt <= maximumRetries else { return nil }
        if let retryAfter {
            guard retryAfter <= maximumRetryAfter else { return nil }
            return max(retryAfter, .zero)
        }
        let ceiling = min(baseDelay * Double(1 << min(attempt - 1, 20)), maximumDelay)
        return .seconds(Double.random(in: 0...ceiling.inSeconds, using: &generator))
    }

    public func delay(beforeRetry attempt: Int, retryAfter: Duration?) -> Duration? {
        var generator = SystemRandomNumberGenerator()
        return delay(beforeRetry: attempt, retryAfter: retryAfter, using: &generator)
    }

    /// Runs `attempt` until it succeeds, fails in a way `retryable` refuses, or the policy gives up (each retry after
    /// its delay, or the `retryAfter` the failure carries).
    public func run<Value, Failure: Error>(
        _ attempt: () async throws(Failure) -> Value, retryable: (Failure) -> Bool,
        retryAfter: (Failure) -> Duration? = { _ in nil }
    ) async throws(Failure) -> Value {
        var retries = 0
        while true {
            do throws(Failure) {
                return try await attempt()
            } catch {
                retries += 1
                guard retryable(error), !Task.isCancelled,
                    let delay = delay(beforeRetry: retries, retryAfter: retryAfter(error))
                else { throw error }
                try? await Task.sleep(for: delay)
            }
        }
    }
}
