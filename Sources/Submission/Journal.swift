import Ethereum

/// One `eth_sendTransaction`, as remembered across restarts.
public struct JournalRecord: Sendable, Hashable {
    public enum State: String, Sendable, Hashable {
        /// Nonce assigned, signature requested; nothing has left the gateway.
        case assigned
        /// Signed; about to be sent (or being sent) to the node.
        case signed
        /// The node accepted it and the client was (or is being) given the hash.
        case submitted
        /// A receipt was seen.
        case mined
        /// Failed for good before anything reached the node.
        case failed
        /// Assigned but never submitted when the gateway stopped: its client never got a hash.
        case abandoned
        /// Another transaction of the gateway took its nonce (a replacement, a speed-up, a cancellation) and the node
        /// accepted it; this one can no longer be mined unless the replacement is dropped.
        case replaced
    }

    public var id: UInt64
    public var from: Address
    public var nonce: UInt64
    public var state: State
    public var raw: [UInt8]?
    public var hash: Bytes32?
    public var idempotencyKey: String?
    public var blockNumber: UInt64?
    public var failure: String?
    /// A digest of the request that carried `idempotencyKey`: a different request under the same key is refused.
    public var requestDigest: Bytes32?
    /// The record this one replaces at the same nonce.
    public var replaces: UInt64?

    public init(
        id: UInt64, from: Address, nonce: UInt64, state: State, raw: [UInt8]? = nil, hash: Bytes32? = nil,
        idempotencyKey: String? = nil, blockNumber: UInt64? = nil, failure: String? = nil,
        requestDigest: Bytes32? = nil, replaces: UInt64? = nil
    ) {
        self.id = id
        self.from = from
        self.nonce = nonce
        self.state = state
        self.raw = raw
        self.hash = hash
        self.idempotencyKey = idempotencyKey
        self.blockNumber = blockNumber
        self.failure = failure
        self.requestDigest = requestDigest
        self.replaces = replaces
    }
}

/// Durable memory of the send pipeline: a transaction is recorded before its signature is requested, and marked
/// submitted before its hash is returned, so that a restarted gateway never reuses a nonce and keeps tracking (and
/// if needed resubmitting) everything a client was told about.
public protocol Journal: Sendable {
    /// Inserts or updates (renumbering) an assignment; `replaces` names the record a replacement takes the nonce of.
    func assigned(
        id: UInt64, from: Address, nonce: UInt64, idempotencyKey: String?, requestDigest: Bytes32?,
        replaces: UInt64?) async throws
    /// The signed bytes of `id` at `nonce`; a no-op if `id` has since been renumbered (`assigned` at another
    /// nonce): a signature that arrives late for an old nonce must not overwrite the current assignment.
    func signed(id: UInt64, nonce: UInt64, raw: [UInt8], hash: Bytes32) async throws
    func submitted(id: UInt64) async throws
    func failed(id: UInt64, reason: String) async throws
    /// A replacement of `id` was accepted by the node.
    func replaced(id: UInt64) async throws
    /// A receipt for `hash` was seen; every other unsettled record of the same sender and nonce is replaced.
    func mined(hash: Bytes32, blockNumber: UInt64) async throws
    /// The block holding `hash` was reorged away: it is submitted (pending) again.
    func unmined(hash: Bytes32) async throws
    /// The highest nonce of `from` the node accepted from this gateway (submitted, mined or replaced). Records the
    /// node refused or that never left the gateway do not count: they must not push later nonces up.
    func lastAcceptedNonce(from: Address) async throws -> UInt64?
    /// Records that were signed or submitted but not seen mined, by sender, then nonce, then id: to settle, per
    /// address, before the address's lane opens after a restart.
    func unsettled() async throws -> [JournalRecord]
    func record(idempotencyKey: String) async throws -> JournalRecord?
    func record(id: UInt64) async throws -> JournalRecord?
    func record(hash: Bytes32) async throws -> JournalRecord?
    /// Marks assignments that never got a signature as abandoned (at startup); returns how many.
    func abandonUnsigned() async throws -> Int
    /// The largest request id used so far (ids continue from it after a restart).
    func maximumID() async throws -> UInt64
}

extension Journal {
    public func assigned(id: UInt64, from: Address, nonce: UInt64, idempotencyKey: String? = nil) async throws {
        try await assigned(
            id: id, from: from, nonce: nonce, idempotencyKey: idempotencyKey, requestDigest: nil,
            replaces: nil)
    }
}
