import Gateway
import JSON
import JSONRPC
import Testing

/// The multiplexer as a value: events in, actions out, no sockets.
@Suite struct SubscriptionMultiplexerTests {
    typealias Machine = SubscriptionMultiplexer<Int>
    let heads = SubscriptionKey(kind: "newHeads", params: [])
    let headsParams: [JSONValue] = ["newHeads"]

    func attempt(of actions: [Machine.Action]) -> UInt64? {
        for action in actions {
            if case .subscribeUpstream(_, _, let attempt) = action { return attempt }
        }
        return nil
    }

    @Test func clientsShareOneUpstreamSubscription() throws {
        var machine = Machine(nodeConnected: true)
        let first = machine.subscribe(key: heads, params: headsParams, client: "a", connection: 1)
        #expect(first == [.subscribeUpstream(heads, params: headsParams, attempt: 1)])
        // Joins while upstream has not answered: no second upstream subscribe, no early confirmation.
        #expect(machine.subscribe(key: heads, params: headsParams, client: "b", connection: 2) == [])
        #expect(machine.recipients(ofUpstream: "0xup").isEmpty)
        let confirmed = machine.upstreamSubscribed(key: heads, attempt: 1, upstreamID: "0xup")
        #expect(confirmed == [.confirm(1, "a"), .confirm(2, "b")])
        // Later joiners are confirmed at once.
        #expect(machine.subscribe(key: heads, params: headsParams, client: "c", connection: 3) == [.confirm(3, "c")])
        #expect(Set(machine.recipients(ofUpstream: "0xup").map(\.client)) == ["a", "b", "c"])
        #expect(machine.upstreamSubscriptionCount == 1)
        #expect(machine.clientSubscriptionCount == 3)
    }

    @Test func equivalentParamsShareAKey() {
        let one = SubscriptionKey(kind: "logs", params: [["address": "0xAB", "topics": ["0x01"]]])
        let two = SubscriptionKey(kind: "logs", params: [["topics": ["0x01"], "address": "0xab"]])
        let other = SubscriptionKey(kind: "logs", params: [["address": "0xac"]])
        #expect(one == two)
        #expect(one != other)
    }

    @Test func lastOneOutUnsubscribesUpstream() throws {
        var machine = Machine(nodeConnected: true)
        _ = machine.subscribe(key: heads, params: headsParams, client: "a", connection: 1)
        _ = machine.subscribe(key: heads, params: headsParams, client: "b", connection: 2)
        _ = machine.upstreamSubscribed(key: heads, attempt: 1, upstreamID: "0xup")
        #expect(machine.unsubscribe(client: "a", connection: 1) == [])
        let last = machine.unsubscribe(client: "b", connection: 2)
        #expect(last == [.unsubscribeUpstream(heads, upstreamID: "0xup", attempt: 2)])
        #expect(machine.recipients(ofUpstream: "0xup").isEmpty)  // nothing is delivered after leaving
        #expect(machine.upstreamUnsubscribed(key: heads, attempt: 2) == [])
        #expect(machine.clientSubscriptionCount == 0)
        // Unknown ids, and ids of another connection, are "subscription not found".
        #expect(machine.unsubscribe(client: "b", connection: 2) == nil)
    }

    @Test func onlyTheOwningConnectionMayUnsubscribe() {
        var machine = Machine(nodeConnected: true)
        _ = machine.subscribe(key: heads, params: headsParams, client: "a", connection: 1)
        _ = machine.upstreamSubscribed(key: heads, attempt: 1, upstreamID: "0xup")
        #expect(machine.unsubscribe(client: "a", connection: 2) == nil)
        #expect(machine.recipients(ofUpstream: "0xup").count == 1)
    }

    @Test func joinWhileTheLastOneIsLeaving() throws {
        var machine = Machine(nodeConnected: true)
        _ = machine.subscribe(key: heads, params: headsParams, client: "a", connection: 1)
        _ = machine.upstreamSubscribed(key: heads, attempt: 1, upstreamID: "0xold")
        let leaving = machine.unsubscribe(client: "a", connection: 1)
        #expect(leaving == [.unsubscribeUpstream(heads, upstreamID: "0xold", attempt: 2)])
        // b arrives while the upstream unsubscribe is in flight: it waits, then gets a fresh upstream subscription.
        #expect(machine.subscribe(key: heads, params: headsParams, client: "b", connection: 2) == [])
        let resubscribe = machine.upstreamUnsubscribed(key: heads, attempt: 2)
        #expect(resubscribe == [.subscribeUpstream(heads, params: headsParams, attempt: 3)])
        #expect(machine.upstreamSubscribed(key: heads, attempt: 3, upstreamID: "0xnew") == [.confirm(2, "b")])
        #expect(machine.recipients(ofUpstream: "0xold").isEmpty)
        #expect(machine.recipients(ofUpstream: "0xnew").map(\.client) == ["b"])
    }

    @Test func unsubscribeBeforeUpstreamConfirms() {
        var machine = Machine(nodeConnected: true)
        _ = machine.subscribe(key: heads, params: headsParams, client: "a", connection: 1)
        // The connection goes away before the node answered the subscribe.
        #expect(machine.connectionClosed(1) == [])
        let cleanup = machine.upstreamSubscribed(key: heads, attempt: 1, upstreamID: "0xup")
        #expect(cleanup == [.unsubscribeUpstream(heads, upstreamID: "0xup", attempt: 2)])
        #expect(machine.upstreamUnsubscribed(key: heads, attempt: 2) == [])
        #expect(machine.clientSubscriptionCount == 0)
        #expect(machine.upstreamSubscriptionCount == 0)
    }

    @Test func upstreamFailureRejectsWaitingClients() {
        var machine = Machine(nodeConnected: true)
        _ = machine.subscribe(key: heads, params: headsParams, client: "a", connection: 1)
        _ = machine.subscribe(key: heads, params: headsParams, client: "b", connection: 2)
        let error = RPCError.server("boom")
        #expect(
            machine.upstreamSubscribeFailed(key: heads, attempt: 1, error: error) == [
                .reject(1, "a", error), .reject(2, "b", error),
            ])
        #expect(machine.clientSubscriptionCount == 0)
        // The key is free again.
        #expect(attempt(of: machine.subscribe(key: heads, params: headsParams, client: "c", connection: 3)) != nil)
    }

    @Test func reconnectionResubscribesAndKeepsClientIDs() {
        var machine = Machine(nodeConnected: true)
        _ = machine.subscribe(key: heads, params: headsParams, client: "a", connection: 1)
        _ = machine.upstreamSubscribed(key: heads, attempt: 1, upstreamID: "0xold")
        _ = machine.subscribe(key: heads, params: headsParams, client: "late", connection: 2)  // confirmed at once
        let logs = SubscriptionKey(kind: "logs", params: [[:]])
        _ = machine.subscribe(key: logs, params: ["logs", [:]], client: "waiting", connection: 3)  // attempt 2, unconfirmed

        let lost = machine.nodeDisconnected()
        #expect(lost.count == 1)
        if case .reject(3, "waiting", _) = lost.first {
        } else {
            Issue.record("unconfirmed client must be told: \(lost)")
        }
        #expect(machine.recipients(ofUpstream: "0xold").isEmpty)
        // While the node is away, new subscriptions are refused rather than left hanging.
        if case .reject(4, "x", _) = machine.subscribe(key: logs, params: ["logs", [:]], client: "x", connection: 4)
            .first
        {
        } else {
            Issue.record("subscribe while disconnected must be rejected")
        }

        let back = machine.nodeConnected()
        #expect(back == [.subscribeUpstream(heads, params: headsParams, attempt: 3)])
        // An answer from before the reconnection is stale and ignored (and its subscription cancelled).
        #expect(
            machine.upstreamSubscribed(key: logs, attempt: 2, upstreamID: "0xstale")
                == [.unsubscribeUpstream(logs, upstreamID: "0xstale", attempt: 0)])
        // Clients already confirmed are not answered again; they simply keep receiving under their ids.
        #expect(machine.upstreamSubscribed(key: heads, attempt: 3, upstreamID: "0xnew") == [])
        #expect(Set(machine.recipients(ofUpstream: "0xnew").map(\.client)) == ["a", "late"])
    }

    @Test func closingAConnectionEndsAllItsSubscriptions() {
        var machine = Machine(nodeConnected: true)
        let logs = SubscriptionKey(kind: "logs", params: [[:]])
        _ = machine.subscribe(key: heads, params: headsParams, client: "a", connection: 1)
        _ = machine.subscribe(key: logs, params: ["logs", [:]], client: "b", connection: 1)
        _ = machine.subscribe(key: heads, params: headsParams, client: "c", connection: 2)
        _ = machine.upstreamSubscribed(key: heads, attempt: 1, upstreamID: "0xheads")
        _ = machine.upstreamSubscribed(key: logs, attempt: 2, upstreamID: "0xlogs")
        let actions = machine.connectionClosed(1)
        #expect(actions == [.unsubscribeUpstream(logs, upstreamID: "0xlogs", attempt: 3)])
        #expect(machine.recipients(ofUpstream: "0xheads").map(\.client) == ["c"])
        #expect(machine.clientSubscriptionCount == 1)
    }
}

extension SubscriptionMultiplexerTests {
    @Test func aFailedResubscriptionKeepsConfirmedClientsForTheNextConnection() {
        var machine = Machine(nodeConnected: true)
        _ = machine.subscribe(key: heads, params: headsParams, client: "a", connection: 1)
        _ = machine.upstreamSubscribed(key: heads, attempt: 1, upstreamID: "0xold")
        _ = machine.nodeDisconnected()
        #expect(machine.nodeConnected() == [.subscribeUpstream(heads, params: headsParams, attempt: 2)])
        // The resubscription fails while connected: "a" keeps its id, and a retry is scheduled…
        #expect(
            machine.upstreamSubscribeFailed(key: heads, attempt: 2, error: .server("lost"))
                == [.retryLater(heads, failures: 1)])
        #expect(machine.clientSubscriptionCount == 1)
        _ = machine.nodeDisconnected()
        // …and is subscribed again on the next connection.
        #expect(machine.nodeConnected() == [.subscribeUpstream(heads, params: headsParams, attempt: 3)])
        #expect(machine.upstreamSubscribed(key: heads, attempt: 3, upstreamID: "0xnew") == [])
        #expect(machine.recipients(ofUpstream: "0xnew").map(\.client) == ["a"])
    }

    @Test func aRefusedResubscriptionIsRetriedWhileConnectedWithGrowingBackoff() {
        var machine = Machine(nodeConnected: true)
        _ = machine.subscribe(key: heads, params: headsParams, client: "a", connection: 1)
        _ = machine.upstreamSubscribed(key: heads, attempt: 1, upstreamID: "0xold")
        _ = machine.nodeDisconnected()
        _ = machine.nodeConnected()
        #expect(
            machine.upstreamSubscribeFailed(key: heads, attempt: 2, error: .server("busy"))
                == [.retryLater(heads, failures: 1)])
        #expect(machine.retry(key: heads) == [.subscribeUpstream(heads, params: headsParams, attempt: 3)])
        #expect(
            machine.upstreamSubscribeFailed(key: heads, attempt: 3, error: .server("busy"))
                == [.retryLater(heads, failures: 2)])
        #expect(machine.retry(key: heads) == [.subscribeUpstream(heads, params: headsParams, attempt: 4)])
        #expect(machine.upstreamSubscribed(key: heads, attempt: 4, upstreamID: "0xnew") == [])
        #expect(machine.recipients(ofUpstream: "0xnew").map(\.client) == ["a"])
        // A retry that is no longer needed does nothing.
        #expect(machine.retry(key: heads) == [])
    }
}
