import Ethereum

/// Idempotency keys of the requests in flight, each bound to a digest of its request: a repeat of the same request
/// joins the first one; the same key with a different request is refused (it would otherwise silently return the
/// first request's hash). Completed keys are answered from the journal, which keeps the digest too.
struct IdempotencyKeys: Sendable {
    enum Claim: Sendable, Equatable {
        /// The key is new: the request goes ahead under `id`.
        case claimed
        /// The same request is already in flight under this id: wait for its answer.
        case joined(UInt64)
        /// The key is in use by a different request.
        case conflict
    }

    private var claims: [String: (id: UInt64, digest: Bytes32)] = [:]

    mutating func claim(_ key: String, digest: Bytes32, id: UInt64) -> Claim {
        if let existing = claims[key] {
            return existing.digest == digest ? .joined(existing.id) : .conflict
        }
        claims[key] = (id, digest)
        return .claimed
    }

    /// Frees the key once the journal holds the request's outcome.
    mutating func release(_ key: String, id: UInt64) {
        if claims[key]?.id == id { claims.removeValue(forKey: key) }
    }
}
