import JSON
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
            if case .failure = result { subscribed.withLock { $0 = false } }
        }
    }

    func deliver(notification: [UInt8], subscription: String) {
        guard let message = try? JSONParser.parse(notification), let result = message["params"]?["result"],
            let head = ReceiptTracker.Head(json: result)
        else { return }
        tracker.newHead(head)
    }
}
