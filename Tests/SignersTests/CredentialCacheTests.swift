import Logging
import Signers
import Synchronization
import TestSupport
import Testing

/// The token cache shared by every call of a remote backend: one refresh in flight, refreshed early, never a storm of
/// token requests, a refused token dropped only if it is still the current one.
@Suite struct CredentialCacheTests {
    typealias State = CredentialCacheState<String>

    static func credential(
        _ secret: String, lifetime: Duration?, at instant: ContinuousClock.Instant
    )
        -> ExpiringCredential<String>
    {
        ExpiringCredential(secret: secret, lifetime: lifetime, issued: instant, margin: .seconds(300))
    }

    /// A cache whose first fetch brought `token`, valid for `lifetime` from `start`.
    static func holding(_ token: String, lifetime: Duration, at start: ContinuousClock.Instant) -> State {
        var state = State()
        _ = state.acquire(at: start)
        state.refreshed(credential(token, lifetime: lifetime, at: start))
        return state
    }

    @Test func theFirstCallerFetchesAndTheOthersWait() {
        let start = ContinuousClock.now
        var state = State()
        #expect(state.acquire(at: start) == .wait(start: true))
        #expect(state.acquire(at: start) == .wait(start: false))
        #expect(state.acquire(at: start) == .wait(start: false))
        state.refreshed(Self.credential("a", lifetime: .seconds(3600), at: start))
        #expect(state.acquire(at: start + .seconds(10)) == .use("a"))
    }

    @Test func aTokenInItsLastMinutesIsUsedWhileOneRefreshRuns() {
        let start = ContinuousClock.now
        var state = Self.holding("a", lifetime: .seconds(3600), at: start)
        let late = start + .seconds(3400)  // less than 300 s left
        #expect(state.acquire(at: late) == .useAndRefresh("a"))
        #expect(state.acquire(at: late) == .use("a"), "only one refresh")
        #expect(state.nextRefresh() == nil, "none due while one runs")
        state.refreshed(Self.credential("b", lifetime: .seconds(3600), at: late))
        #expect(state.acquire(at: late) == .use("b"))
        #expect(state.nextRefresh() == late + .seconds(3300))
    }

    @Test func aShortLivedTokenIsRefreshedAfterTwoThirdsOfItsLife() {
        let start = ContinuousClock.now
        let credential = Self.credential("a", lifetime: .seconds(60), at: start)
        #expect(credential.refreshAt == start + .seconds(40))
        #expect(!credential.isExpired(at: start + .seconds(59)))
        #expect(credential.isExpired(at: start + .seconds(60)))
        let forever = Self.credential("root", lifetime: nil, at: start)
        #expect(forever.expiresAt == nil && forever.refreshAt == nil)
        #expect(!forever.isExpired(at: start + .seconds(1_000_000)))
    }

    @Test func aFailedBackgroundRefreshIsNotRetriedAtOnce() {
        let start = ContinuousClock.now
        var state = Self.holding("a", lifetime: .seconds(600), at: start)
        let late = start + .seconds(500)
        #expect(state.acquire(at: late) == .useAndRefresh("a"))
        state.refreshFailed(at: late, backoff: .seconds(5))
        #expect(state.acquire(at: late + .seconds(1)) == .use("a"), "the authority is down: keep the token in hand")
        #expect(state.nextRefresh() == late + .seconds(5))
        #expect(state.acquire(at: late + .seconds(6)) == .useAndRefresh("a"))
    }

    @Test func anExpiredTokenMakesCallersWait() {
        let start = ContinuousClock.now
        var state = Self.holding("a", lifetime: .seconds(60), at: start)
        #expect(state.acquire(at: start + .seconds(61)) == .wait(start: true))
    }

    /// A 401 for an old token must not throw away the new one another call already has.
    @Test func invalidationDropsOnlyTheRefusedToken() {
        let start = ContinuousClock.now
        var state = Self.holding("new", lifetime: .seconds(3600), at: start)
        state.invalidate("old")
        #expect(state.acquire(at: start) == .use("new"))
        state.invalidate("new")
        #expect(state.acquire(at: start) == .wait(start: true))
    }

    /// Many calls at once with no token: exactly one request to the issuer, and everyone gets its token.
    @Test func concurrentCallersShareOneRefresh() async throws {
        let count = Atomic<Int>(0)
        let cache = CredentialCache<String> { _ throws(SignerError) in
            let number = count.add(1, ordering: .relaxed).newValue
            try? await Task.sleep(for: .milliseconds(100))
            return ExpiringCredential(secret: "t\(number)", lifetime: .seconds(3600), issued: .now)
        }
        let secrets = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<200 { group.addTask { try await cache.secret() } }
            return try await group.reduce(into: Set<String>()) { $0.insert($1) }
        }
        #expect(secrets == ["t1"])
        #expect(count.load(ordering: .relaxed) == 1)
        cache.invalidate("t1")
        #expect(try await cache.secret() == "t2")
        #expect(count.load(ordering: .relaxed) == 2)
    }

    @Test func aFailedRefreshFailsItsWaitersAndTheNextCallTriesAgain() async throws {
        let count = Atomic<Int>(0)
        let cache = CredentialCache<String>(failureBackoff: .milliseconds(1)) { _ throws(SignerError) in
            if count.add(1, ordering: .relaxed).newValue == 1 { throw .backendUnavailable("authority down") }
            return ExpiringCredential(secret: "ok", lifetime: .seconds(3600), issued: .now)
        }
        let error = try await #require(throws: SignerError.self) { try await cache.secret() }
        #expect(error.label == "backend_unavailable")
        #expect(try await cache.secret() == "ok")
    }

    /// The keep-fresh loop replaces a token before it runs out, with no call asking.
    @Test func keepFreshRefreshesWhileIdle() async throws {
        let count = Atomic<Int>(0)
        let cache = CredentialCache<String> { _ throws(SignerError) in
            let number = count.add(1, ordering: .relaxed).newValue
            return ExpiringCredential(secret: "t\(number)", lifetime: .milliseconds(600), issued: .now)
        }
        #expect(try await cache.secret() == "t1")
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let loop = Task { await cache.keepFresh(logger: logger, label: "test") }
        // Due every 400 ms; a loaded machine may take longer, but without the loop there would be none at all.
        let refreshed = await eventually(timeout: .seconds(30), every: .milliseconds(20)) {
            count.load(ordering: .relaxed) >= 3
        }
        loop.cancel()
        await loop.value
        #expect(refreshed)
        let current = try await cache.secret()
        #expect(current != "t1")
    }
}
