import JSON
import JSONRPC

/// Shares one upstream subscription among every client that asks for the same (kind, params), as postgres-nio's
/// `ListenStateMachine` shares one LISTEN among listeners. A value: each method takes an event and returns the
/// actions its owner must perform (send upstream, answer a client); it does no I/O and is tested without sockets.
///
/// Races it settles:
/// - a client joins while the upstream subscribe is in flight: it is confirmed with the others;
/// - the last client leaves before upstream confirmed: the upstream subscription is cancelled once it exists;
/// - a client joins while the last one's upstream unsubscribe is in flight: a new upstream subscribe follows it;
/// - the node reconnects: every channel with clients is subscribed again; clients keep their ids;
/// - answers from an earlier connection (stale attempts) are ignored.
public struct SubscriptionMultiplexer<Connection: Hashable & Sendable>: Sendable {
    public typealias ClientID = String

    public enum Action: Sendable, Equatable {
        /// Send `eth_subscribe(params)` upstream; report back with `attempt`.
        case subscribeUpstream(SubscriptionKey, params: [JSONValue], attempt: UInt64)
        /// Send `eth_unsubscribe(upstreamID)` upstream; report back with `attempt`.
        case unsubscribeUpstream(SubscriptionKey, upstreamID: String, attempt: UInt64)
        /// Answer the client's pending `eth_subscribe` with its id.
        case confirm(Connection, ClientID)
        /// Answer the client's pending `eth_subscribe` with an error.
        case reject(Connection, ClientID, RPCError)
        /// The node refused to (re)subscribe a channel that still has clients: call `retry(key:)` after a backoff
        /// for this many consecutive failures.
        case retryLater(SubscriptionKey, failures: Int)
    }

    private enum Upstream: Sendable, Equatable {
        /// No upstream subscription and none requested (the node is disconnected).
        case idle
        case subscribing(attempt: UInt64)
        case active(upstreamID: String)
        case unsubscribing(attempt: UInt64)
    }

    private struct Member: Sendable {
        let connection: Connection
        var confirmed: Bool
    }

    private struct Channel: Sendable {
        var upstream: Upstream
        var params: [JSONValue]
        var members: [ClientID: Member] = [:]
        /// Consecutive refused subscribes while connected.
        var failures = 0
    }

    private var channels: [SubscriptionKey: Channel] = [:]
    private var keyByUpstreamID: [String: SubscriptionKey] = [:]
    private var keyByClientID: [ClientID: SubscriptionKey] = [:]
    private var clientsByConnection: [Connection: Set<ClientID>] = [:]
    private var isNodeConnected: Bool
    private var nextAttempt: UInt64 = 1

    public init(nodeConnected: Bool = false) {
        self.isNodeConnected = nodeConnected
    }

    // MARK: Client events

    public mutating func subscribe(
        key: SubscriptionKey, params: [JSONValue], client: ClientID, connection: Connection
    ) -> [Action] {
        // While the node is away nothing could confirm the subscription: refuse now rather than leave it hanging.
        guard isNodeConnected else { return [.reject(connection, client, NodeUnavailable.error)] }
        keyByClientID[client] = key
        clientsByConnection[connection, default: []].insert(client)
        guard var channel = channels[key] else {
            let attempt = takeAttempt()
            var channel = Channel(upstream: .subscribing(attempt: attempt), params: params)
            channel.members[client] = Member(connection: connection, confirmed: false)
            channels[key] = channel
            return [.subscribeUpstream(key, params: params, attempt: attempt)]
        }
        switch channel.upstream {
        case .active:
            channel.members[client] = Member(connection: connection, confirmed: true)
            channels[key] = channel
            return [.confirm(connection, client)]
        case .subscribing, .unsubscribing, .idle:
            // Confirmed together with the others once upstream answers (or the node is back).
            channel.members[client] = Member(connection: connection, confirmed: false)
            channels[key] = channel
            return []
        }
    }

    /// A client's `eth_unsubscribe`. `nil` when the id is unknown or belongs to another connection.
    public mutating func unsubscribe(client: ClientID, connection: Connection) -> [Action]? {
        guard let key = keyByClientID[client], channels[key]?.members[client]?.connection == connection else {
            return nil
        }
        forget(client: client, connection: connection)
        return leave(client: client, key: key)
    }

    /// A client connection closed: its subscriptions end with it.
    public mutating func connectionClosed(_ connection: Connection) -> [Action] {
        guard let clients = clientsByConnection.removeValue(forKey: connection) else { return [] }
        var actions: [Action] = []
        for client in clients {
            guard let key = keyByClientID.removeValue(forKey: client) else { continue }
            actions += leave(client: client, key: key)
        }
        return actions
    }

    private mutating func leave(client: ClientID, key: SubscriptionKey) -> [Action] {
        guard var channel = channels[key] else { return [] }
        channel.members.removeValue(forKey: client)
        guard channel.members.isEmpty else {
            channels[key] = channel
            return []
        }
        switch channel.upstream {
        case .active(let upstreamID):
            keyByUpstreamID.removeValue(forKey: upstreamID)
            let attempt = takeAttempt()
            channel.upstream = .unsubscribing(attempt: attempt)
            channels[key] = channel
            return [.unsubscribeUpstream(key, upstreamID: upstreamID, attempt: attempt)]
        case .idle:
            channels.removeValue(forKey: key)
            return []
        case .subscribing, .unsubscribing:
            // Settled when upstream answers.
            channels[key] = channel
            return []
        }
    }

    // MARK: Upstream events

    public mutating func upstreamSubscribed(key: SubscriptionKey, attempt: UInt64, upstreamID: String) -> [Action] {
        guard var channel = channels[key], channel.upstream == .subscribing(attempt: attempt) else {
            // Stale: this subscription belongs to a connection or attempt we have moved past.
            return isNodeConnected ? [.unsubscribeUpstream(key, upstreamID: upstreamID, attempt: 0)] : []
        }
        if channel.members.isEmpty {
            let next = takeAttempt()
            channel.upstream = .unsubscribing(attempt: next)
            channels[key] = channel
            return [.unsubscribeUpstream(key, upstreamID: upstreamID, attempt: next)]
        }
        channel.upstream = .active(upstreamID: upstreamID)
        channel.failures = 0
        keyByUpstreamID[upstreamID] = key
        var actions: [Action] = []
        for (client, member) in channel.members.sorted(by: { $0.key < $1.key }) where !member.confirmed {
            channel.members[client]?.confirmed = true
            actions.append(.confirm(member.connection, client))
        }
        channels[key] = channel
        return actions
    }

    public mutating func upstreamSubscribeFailed(key: SubscriptionKey, attempt: UInt64, error: RPCError) -> [Action] {
        guard let channel = channels[key], channel.upstream == .subscribing(attempt: attempt) else { return [] }
        return rejectWaitingAndIdle(key, channel, error)
    }

    /// Rejects the clients still waiting for a confirmation; clients confirmed earlier keep their ids and the
    /// channel waits idle, to be subscribed again on the next connection. A channel left empty is dropped.
    private mutating func rejectWaitingAndIdle(
        _ key: SubscriptionKey, _ channel: Channel, _ error: RPCError
    ) -> [Action] {
        var channel = channel
        var actions: [Action] = []
        for (client, member) in channel.members.sorted(by: { $0.key < $1.key }) where !member.confirmed {
            channel.members.removeValue(forKey: client)
            forget(client: client, connection: member.connection)
            actions.append(.reject(member.connection, client, error))
        }
        if channel.members.isEmpty {
            channels.removeValue(forKey: key)
        } else {
            channel.upstream = .idle
            if isNodeConnected {
                // Refused while connected (not lost with the connection): try again later, or the clients it kept
                // would wait for a notification that never comes until the next reconnection.
                channel.failures += 1
                actions.append(.retryLater(key, failures: channel.failures))
            }
            channels[key] = channel
        }
        return actions
    }

    /// A `retryLater` is due: subscribe the channel again if it is still idle with clients and the node is here.
    public mutating func retry(key: SubscriptionKey) -> [Action] {
        guard isNodeConnected, var channel = channels[key], channel.upstream == .idle, !channel.members.isEmpty else {
            return []
        }
        let attempt = takeAttempt()
        channel.upstream = .subscribing(attempt: attempt)
        channels[key] = channel
        return [.subscribeUpstream(key, params: channel.params, attempt: attempt)]
    }

    /// The upstream unsubscribe finished (either way: a failed unsubscribe leaves nothing we could use).
    public mutating func upstreamUnsubscribed(key: SubscriptionKey, attempt: UInt64) -> [Action] {
        guard var channel = channels[key], channel.upstream == .unsubscribing(attempt: attempt) else { return [] }
        guard !channel.members.isEmpty else {
            channels.removeValue(forKey: key)
            return []
        }
        guard isNodeConnected else {
            channel.upstream = .idle
            channels[key] = channel
            return []
        }
        let next = takeAttempt()
        channel.upstream = .subscribing(attempt: next)
        channels[key] = channel
        return [.subscribeUpstream(key, params: channel.params, attempt: next)]
    }

    /// Who receives a notification of `upstreamID`: confirmed clients only (no notification before the subscribe
    /// response).
    public func recipients(ofUpstream upstreamID: String) -> [(connection: Connection, client: ClientID)] {
        guard let key = keyByUpstreamID[upstreamID], let channel = channels[key] else { return [] }
        return channel.members.compactMap { $0.value.confirmed ? ($0.value.connection, $0.key) : nil }
    }

    public mutating func nodeDisconnected() -> [Action] {
        isNodeConnected = false
        keyByUpstreamID.removeAll()
        var actions: [Action] = []
        for (key, channel) in channels {
            actions += rejectWaitingAndIdle(key, channel, NodeUnavailable.lost)
        }
        return actions
    }

    public mutating func nodeConnected() -> [Action] {
        isNodeConnected = true
        var actions: [Action] = []
        for (key, var channel) in channels.sorted(by: { $0.key.description < $1.key.description }) {
            guard channel.upstream == .idle, !channel.members.isEmpty else { continue }
            let attempt = takeAttempt()
            channel.upstream = .subscribing(attempt: attempt)
            channels[key] = channel
            actions.append(.subscribeUpstream(key, params: channel.params, attempt: attempt))
        }
        return actions
    }

    // MARK: Introspection (status, tests)

    public var upstreamSubscriptionCount: Int {
        channels.values.filter { if case .active = $0.upstream { true } else { false } }.count
    }

    public var clientSubscriptionCount: Int { keyByClientID.count }

    // MARK: Helpers

    private mutating func takeAttempt() -> UInt64 {
        defer { nextAttempt += 1 }
        return nextAttempt
    }

    private mutating func forget(client: ClientID, connection: Connection) {
        keyByClientID.removeValue(forKey: client)
        clientsByConnection[connection]?.remove(client)
        if clientsByConnection[connection]?.isEmpty == true { clientsByConnection.removeValue(forKey: connection) }
    }
}

enum NodeUnavailable {
    static let error = RPCError.internalError("upstream node unavailable (reconnecting); subscription not created")
    static let lost = RPCError.server("upstream node connection lost before the subscription was confirmed")
}
