import Ethereum
import JSON
import JSONRPC
import Submission
import Synchronization

/// `eth_subscribe("transactionReceipts")`, served from the gateway's own receipt tracker so it works whatever the
/// node supports (geth ≥ 1.16.5 form: each notification's result is an array of receipts):
/// - with `{"transactionHashes": [...]}` (at most 200): receipts of those transactions;
/// - without params: receipts of every transaction this connection sent through the gateway.
///
/// Also the streams of `signer_sendTransactionAndWatch`: the hash, the receipt, then each confirmation up to N.
public final class ReceiptSubscriptions: LocalSubscriptions {
    public static let kind = "transactionReceipts"
    public static let maximumHashes = 200

    private enum Filter: Sendable {
        case ownTransactions
        case hashes(Set<Bytes32>)
        case watch(Bytes32, confirmations: UInt64)
    }

    private struct Subscription: Sendable {
        let connectionID: UInt64
        let sink: any SubscriptionSink
        let filter: Filter
    }

    private let tracker: ReceiptTracker
    private let subscriptions = Mutex<[String: Subscription]>([:])

    public init(tracker: ReceiptTracker) {
        self.tracker = tracker
    }

    public func subscribe(
        kind: String, params: [JSONValue], sink: any SubscriptionSink,
        reply: @escaping @Sendable (Result<JSONValue, RPCError>) -> Void
    ) {
        let filter: Filter
        switch params.first {
        case nil, .null?:
            filter = .ownTransactions
        case .object(let object)?:
            guard let list = object["transactionHashes"]?.arrayValue else {
                return reply(.failure(.invalidParams("transactionReceipts: expected {\"transactionHashes\": [...]}")))
            }
            guard list.count <= Self.maximumHashes else {
                return reply(
                    .failure(.invalidParams("transactionReceipts: at most \(Self.maximumHashes) transaction hashes")))
            }
            var hashes = Set<Bytes32>()
            for item in list {
                guard let text = item.stringValue, let hash = try? Bytes32(hex: text) else {
                    return reply(
                        .failure(.invalidParams("transactionReceipts: transaction hashes must be 32-byte hex")))
                }
                hashes.insert(hash)
            }
            filter = .hashes(hashes)
        case let other?:
            return reply(.failure(.invalidParams("transactionReceipts: expected an object, got \(other.typeName)")))
        }
        let id = register(filter, sink: sink)
        sink.willAnnounce(subscription: id)
        reply(.success(.string(id)))
        if case .hashes(let hashes) = filter {
            for hash in hashes { tracker.track(hash, connectionID: nil) }
            tracker.lookUp(Array(hashes))  // by the tracker, one at a time, not 200 at once
        }
    }

    /// Opens a watch stream for a transaction just sent; the caller answers the request with the returned id.
    public func watch(_ hash: Bytes32, confirmations: UInt64, sink: any SubscriptionSink) -> String {
        let id = register(.watch(hash, confirmations: max(1, confirmations)), sink: sink)
        sink.willAnnounce(subscription: id)
        return id
    }

    /// The first notifications of a watch: the hash, and what the tracker already knows (an automining node has the
    /// receipt before the send returns).
    public func startWatch(_ id: String, hash: Bytes32, sink: any SubscriptionSink) {
        sink.notify(subscription: id, result: ["event": "sent", "transactionHash": .string(hash.hex)])
        guard let known = tracker.knownReceipt(hash) else { return }
        sink.notify(
            subscription: id,
            result: [
                "event": "mined", "receipt": known.receipt,
                "blockNumber": .string(Hex.encodeQuantity(known.blockNumber)),
            ])
        if known.confirmations > 0 {
            for confirmations in 1...known.confirmations {
                handle(.confirmed(hash: hash, confirmations: confirmations, blockNumber: known.blockNumber), only: id)
            }
        }
    }

    private func register(_ filter: Filter, sink: any SubscriptionSink) -> String {
        let id = SubscriptionHub.newClientID()
        subscriptions.withLock { $0[id] = Subscription(connectionID: sink.connectionID, sink: sink, filter: filter) }
        return id
    }

    public func unsubscribe(client: String, connectionID: UInt64) -> Bool {
        subscriptions.withLock { subscriptions in
            guard subscriptions[client]?.connectionID == connectionID else { return false }
            subscriptions.removeValue(forKey: client)
            return true
        }
    }

    public func connectionClosed(_ connectionID: UInt64) {
        subscriptions.withLock { $0 = $0.filter { $0.value.connectionID != connectionID } }
    }

    /// `replacement` took the nonce of `replaced` (a speed-up, a cancellation, a stuck transaction re-priced):
    /// watchers are told and follow the new hash; hash subscriptions receive either receipt.
    public func replaced(_ replaced: Bytes32, by replacement: Bytes32) {
        let targets = subscriptions.withLock { subscriptions -> [(String, Subscription)] in
            var targets: [(String, Subscription)] = []
            for (id, subscription) in subscriptions {
                switch subscription.filter {
                case .watch(replaced, let confirmations):
                    let moved = Subscription(
                        connectionID: subscription.connectionID, sink: subscription.sink,
                        filter: .watch(replacement, confirmations: confirmations))
                    subscriptions[id] = moved
                    targets.append((id, moved))
                case .hashes(var hashes) where hashes.contains(replaced):
                    hashes.insert(replacement)
                    subscriptions[id] = Subscription(
                        connectionID: subscription.connectionID, sink: subscription.sink,
                        filter: .hashes(hashes))
                default:
                    break
                }
            }
            return targets
        }
        for (id, subscription) in targets {
            subscription.sink.notify(
                subscription: id,
                result: [
                    "event": "replaced", "transactionHash": .string(replacement.hex),
                    "replacedTransactionHash": .string(replaced.hex),
                ])
        }
    }

    // MARK: Tracker events

    public func handle(_ event: ReceiptEvent, only: String? = nil) {
        switch event {
        case .mined(let hash, let receipt, let blockNumber, let connectionID):
            let targets = subscriptions.withLock { $0 }
            for (id, subscription) in targets {
                switch subscription.filter {
                case .ownTransactions where subscription.connectionID == connectionID:
                    subscription.sink.notify(subscription: id, result: .array([receipt]))
                case .hashes(let hashes) where hashes.contains(hash):
                    subscription.sink.notify(subscription: id, result: .array([receipt]))
                case .watch(let watched, _) where watched == hash:
                    subscription.sink.notify(
                        subscription: id,
                        result: [
                            "event": "mined", "receipt": receipt,
                            "blockNumber": .string(Hex.encodeQuantity(blockNumber)),
                        ])
                default:
                    break
                }
            }
        case .confirmed(let hash, let confirmations, let blockNumber):
            let targets = subscriptions.withLock { subscriptions in
                subscriptions.filter { entry in
                    guard only == nil || entry.key == only else { return false }
                    if case .watch(hash, _) = entry.value.filter { return true }
                    return false
                }
            }
            for (id, subscription) in targets {
                guard case .watch(_, let wanted) = subscription.filter, confirmations <= wanted else { continue }
                subscription.sink.notify(
                    subscription: id,
                    result: [
                        "event": "confirmation", "transactionHash": .string(hash.hex),
                        "confirmations": .number(confirmations),
                        "blockNumber": .string(Hex.encodeQuantity(blockNumber)),
                    ])
                if confirmations == wanted { _ = subscriptions.withLock { $0.removeValue(forKey: id) } }
            }
        case .reorged(let hash):
            let targets = subscriptions.withLock { subscriptions in
                subscriptions.filter { if case .watch(hash, _) = $0.value.filter { true } else { false } }
            }
            for (id, subscription) in targets {
                subscription.sink.notify(
                    subscription: id, result: ["event": "reorged", "transactionHash": .string(hash.hex)])
            }
        }
    }
}
