import Foundation
import Signers
import TestSupport
import Testing

/// How remote backends wait before retrying: jittered, bounded, and what the server asked for when it asked.
@Suite struct RetryPolicyTests {
    @Test func retryAfterIsSecondsOrAnHTTPDate() {
        let now = Date(timeIntervalSince1970: 784_111_777)  // Sun, 06 Nov 1994 08:49:37 GMT
        #expect(RetryAfter.parse("3", now: now) == .seconds(3))
        #expect(RetryAfter.parse(" 0 ", now: now) == .zero)
        #expect(RetryAfter.parse("Sun, 06 Nov 1994 08:49:47 GMT", now: now) == .seconds(10))
        #expect(RetryAfter.parse("Sun, 06 Nov 1994 08:49:00 GMT", now: now) == .zero, "a date in the past: now")
        #expect(RetryAfter.parse("soon", now: now) == nil)
        #expect(RetryAfter.parse("-1", now: now) == nil)
        #expect(RetryAfter.parse("1.5", now: now) == nil)
        #expect(RetryAfter.parse("", now: now) == nil)
    }

    @Test func delaysAreJitteredUnderADoublingCeiling() {
        let policy = RetryPolicy(
            maximumRetries: 6, baseDelay: .milliseconds(100), maximumDelay: .milliseconds(800),
            maximumRetryAfter: .seconds(5))
        var generator = SeededGenerator(seed: 7)
        var seen: Set<Duration> = []
        for attempt in 1...6 {
            let ceiling = min(Duration.milliseconds(100 * (1 << (attempt - 1))), .milliseconds(800))
            for _ in 0..<50 {
                let delay = policy.delay(beforeRetry: attempt, retryAfter: nil, using: &generator)
                guard let delay else {
                    Issue.record("attempt \(attempt) gave up")
                    return
                }
                #expect(delay >= .zero && delay <= ceiling)
                seen.insert(delay)
            }
        }
        #expect(seen.count > 100, "jitter: not the same delay every time")
        #expect(policy.delay(beforeRetry: 7, retryAfter: nil, using: &generator) == nil, "bounded")
    }

    @Test func theServersRetryAfterIsWaitedUnlessItIsTooLong() {
        let policy = RetryPolicy(maximumRetries: 2, maximumRetryAfter: .seconds(5))
        #expect(policy.delay(beforeRetry: 1, retryAfter: .seconds(2)) == .seconds(2))
        #expect(policy.delay(beforeRetry: 1, retryAfter: .seconds(30)) == nil, "fail now; the pipeline retries")
        #expect(policy.delay(beforeRetry: 3, retryAfter: .seconds(1)) == nil)
        #expect(RetryPolicy(maximumRetries: 0).delay(beforeRetry: 1, retryAfter: nil) == nil)
    }
}
