import JSON
import JSONRPC
import Node
import Submission
import Synchronization

/// Gives the receipt tracker the node's new heads through the same shared `newHeads` subscription clients use, so
/// tracking receipts costs no extra upstream subscription. Subscribes once the node is connected; the hub keeps the
/// subscription alive across reconnections.
final class HeadsFeed: SubscriptionSink {
    /// Connection ids of clients start at 1; 0 is the gateway itself.
    let connectionID: UInt64 = 0
    private let hub: SubscriptionHub
    private let tracker: ReceiptTracker
    private let subscribed = Mutex<Bool>(false)
    /// How often an HTTP-only node is asked for its latest block.
    private let pollMilliseconds = 1_000

    init(hub: SubscriptionHub, tracker: ReceiptTracker) {
        self.hub = hub
        self.tracker = tracker
    }

    func handle(_ event: NodeEvent) {
        guard case .connected = event else { return }
        let needed = subscribed.withLock { subscribed -> Bool in
            defer { subscribed = true }
            return !subscribed
        }
        guard needed else { return }
        hub.subscribe(kind: "newHeads", params: [], sink: self) { [self] result in
            guard case .failure(let error) = result else { return }
            if error == .notificationsNotSupported || error.message == RPCError.notificationsNotSupported.message {
                startPolling()  // an HTTP-only node: follow the chain by asking for the latest block
            } else {
                subscribed.withLock { $0 = false }
            }
        }
    }

    private func startPolling() {
        Task { [node = hub.node, tracker] in
            var last: String? = nil
            while !Task.isCancelled {
                if case .success(let block) = await node.call(method: "eth_getBlockByNumber", params: ["latest", false]),
                    let head = ReceiptTracker.Head(json: block), head.hash != last
                {
                    last = head.hash
                    tracker.newHead(head)
                }
                try? await Task.sleep(for: .milliseconds(pollMilliseconds))
            }
        }
    }

    func deliver(notification: [UInt8], subscription: String) {
        guard let message = try? JSONParser.parse(notification), let result = message["params"]?["result"],
            let head = ReceiptTracker.Head(json: result)
        else { return }
        tracker.newHead(head)
    }
}
