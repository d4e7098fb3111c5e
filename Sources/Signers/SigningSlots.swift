import Synchronization

/// A counting semaphore for one backend's signatures: at most `capacity` in flight, the rest wait in arrival order.
/// Remote HSMs throttle (CloudHSM answers CKR_DEVICE_ERROR, KMS 429) well before a pipeline runs out of work; the cap
/// keeps the gateway below that instead of turning every burst into retries.
final class SigningSlots: Sendable {
    private struct State {
        var available: Int
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state: Mutex<State>

    init(capacity: Int) {
        state = Mutex(State(available: max(1, capacity)))
    }

    func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let granted = state.withLock { state -> Bool in
                if state.available > 0 {
                    state.available -= 1
                    return true
                }
                state.waiters.append(continuation)
                return false
            }
            if granted { continuation.resume() }
        }
    }

    func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.waiters.isEmpty {
                state.available += 1
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.resume()
    }
}
