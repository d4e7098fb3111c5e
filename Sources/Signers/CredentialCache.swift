import Logging
import Synchronization

/// One backend's expiring credential (an Entra ID token, a Vault token), fetched once and shared by every call,
/// refreshed before it runs out (`CredentialCacheState` decides when; this class runs the refresh).
///
/// Refreshing is lazy but early: a call that finds the credential in its last third (or last 5 minutes) uses it and
/// starts one background refresh. That alone keeps a busy gateway's token fresh, and works where no `Service` runs
/// (a backend used by a test or `check-config`). `keepFresh()` adds what laziness cannot: an idle gateway's Vault
/// token, which dies if nobody renews it within its TTL. The backend runs it as its `Service` body.
public final class CredentialCache<Secret: Sendable & Equatable>: Sendable {
    /// Gets a new credential; `current` is the one in hand, if any (Vault renews it rather than logging in again).
    public typealias Refresh =
        @Sendable (_ current: ExpiringCredential<Secret>?) async throws(SignerError) ->
        ExpiringCredential<Secret>

    private typealias Flight = Task<Result<ExpiringCredential<Secret>, SignerError>, Never>

    private struct State: Sendable {
        var machine = CredentialCacheState<Secret>()
        var flight: Flight?
    }

    private let refresh: Refresh
    private let failureBackoff: Duration
    private let state = Mutex(State())

    /// `failureBackoff`: after a failed background refresh, how long the credential in hand is used before trying
    /// again.
    public init(failureBackoff: Duration = .seconds(5), refresh: @escaping Refresh) {
        self.refresh = refresh
        self.failureBackoff = failureBackoff
    }

    /// The secret to send now, fetching or waiting for one if none is valid.
    public func secret() async throws(SignerError) -> Secret {
        let now = ContinuousClock.now
        let (acquisition, flight) = state.withLock { state -> (CredentialCacheState<Secret>.Acquisition, Flight?) in
            let acquisition = state.machine.acquire(at: now)
            switch acquisition {
            case .use: return (acquisition, nil)
            case .useAndRefresh, .wait(start: true):
                let flight = startFlight(current: state.machine.current)
                state.flight = flight
                return (acquisition, flight)
            case .wait(start: false):
                return (acquisition, state.flight)
            }
        }
        switch acquisition {
        case .use(let secret), .useAndRefresh(let secret):
            return secret
        case .wait:
            guard let flight else { throw .backendUnavailable("no credential and no refresh running") }
            return try await flight.value.get().secret
        }
    }

    /// The issuer refused `secret`: the next `secret()` fetches a new one (unless another call already has).
    public func invalidate(_ secret: Secret) {
        state.withLock { $0.machine.invalidate(secret) }
    }

    /// Refreshes now (or joins the refresh in flight) and returns the new credential's secret.
    @discardableResult
    public func refreshNow() async throws(SignerError) -> Secret {
        let flight = state.withLock { state -> Flight in
            if let flight = state.flight { return flight }
            _ = state.machine.startRefresh()
            let flight = startFlight(current: state.machine.current)
            state.flight = flight
            return flight
        }
        return try await flight.value.get().secret
    }

    /// Refreshes each credential when it is due until the task is cancelled or the service group shuts down; never
    /// throws (a `Service` that throws stops the gateway, and an authority outage is not a reason to stop).
    public func keepFresh(logger: Logger, label: String) async {
        while !Task.isCancelled {
            let due = state.withLock { $0.machine.nextRefresh() }
            // Nothing due (no credential yet, one that never expires): look again later; the first call fetches.
            let wake = due ?? ContinuousClock.now + .seconds(30)
            do {
                try await Task.sleep(until: wake, clock: .continuous)
            } catch {
                return
            }
            guard due != nil, state.withLock({ $0.machine.nextRefresh() }).map({ $0 <= .now }) ?? false else {
                continue
            }
            do throws(SignerError) {
                try await refreshNow()
            } catch {
                logger.warning(
                    "cannot refresh credential", metadata: ["signer.backend": "\(label)", "error": "\(error)"])
            }
        }
    }

    private func startFlight(current: ExpiringCredential<Secret>?) -> Flight {
        Task { [self] in
            let result: Result<ExpiringCredential<Secret>, SignerError>
            do throws(SignerError) {
                result = .success(try await self.refresh(current))
            } catch {
                result = .failure(error)
            }
            self.state.withLock { state in
                switch result {
                case .success(let credential): state.machine.refreshed(credential)
                case .failure: state.machine.refreshFailed(at: .now, backoff: self.failureBackoff)
                }
                state.flight = nil
            }
            return result
        }
    }
}
