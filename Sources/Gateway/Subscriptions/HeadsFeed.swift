import JSON
import JSONRPC
import Node
import ServiceLifecycle
import Submission
import Synchronization

/// Gives the receipt tracker (and the send pipeline's resender) the node's new heads through the same shared
/// `newHeads` subscription clients use, so following the chain costs no extra upstream subscription. Subscribes
/// once the node is connected, retrying with backoff while it refuses; the hub keeps the subscription alive across
/// reconnections. A node that cannot carry subscriptions (HTTP) polls its latest block itself (`.polledHead`).
final class HeadsFeed: SubscriptionSink, Service {
    /// Connection ids of clients start at 1; 0 is the gateway itself.
    let connectionID: UInt64 = 0
    private let hub: SubscriptionHub
    private let onHead: @Sendable (ReceiptTracker.Head) -> Void
    private let connected = Atomic<Bool>(false)
    private let connections: AsyncStream<Void>
    private let connectionInput: AsyncStream<Void>.Continuation

    init(hub: SubscriptionHub, onHead: @escaping @Sendable (ReceiptTracker.Head) -> Void) {
        self.hub = hub
        self.onHead = onHead
        (connections, connectionInput) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    func handle(_ event: NodeEvent) {
        switch event {
        case .connected:
            connected.store(true, ordering: .relaxed)
            connectionInput.yield()
        case .disconnected:
            connected.store(false, ordering: .relaxed)
        case .polledHead(let block):
            if let head = ReceiptTracker.Head(json: block) { onHead(head) }
        case .notification:
            break
        }
    }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            var subscribed = false
            for await _ in self.connections where !subscribed {
                var backoff = Backoff(initial: .milliseconds(200), maximum: .seconds(10))
                while self.connected.load(ordering: .relaxed) && !Task.isCancelled {
                    switch await self.subscribe() {
                    case .success:
                        subscribed = true
                    case .failure(let error) where error == .notificationsNotSupported:
                        return  // an HTTP-only node: it announces polled heads itself
                    case .failure:
                        guard (try? await Task.sleep(for: backoff.nextDelay())) != nil else { return }
                        continue
                    }
                    break
                }
            }
        }
        // A service that returns ends the group: the feed's work may be done (an HTTP node), but it stays until
        // shutdown.
        try? await gracefulShutdown()
    }

    private func subscribe() async -> Result<JSONValue, RPCError> {
        await withCheckedContinuation { continuation in
            hub.subscribe(kind: "newHeads", params: [], sink: self) { continuation.resume(returning: $0) }
        }
    }

    func deliver(notification: [UInt8], subscription: String) {
        guard let message = try? JSONParser.parse(notification), let result = message["params"]?["result"],
            let head = ReceiptTracker.Head(json: result)
        else { return }
        onHead(head)
    }
}
