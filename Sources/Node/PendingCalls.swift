import JSON
import JSONRPC
import NIOCore

/// Calls sent upstream and not yet answered, keyed by the upstream id the gateway gave them. Clients' own ids never
/// reach the node: two clients may both use id 1, and a node must see distinct ids on one connection.
struct PendingCalls {
    typealias Completion = @Sendable (Result<JSONValue, NodeError>) -> Void

    private struct Call {
        let deadline: NIODeadline
        let completion: Completion
    }

    private var nextID: UInt64 = 1
    private var calls: [UInt64: Call] = [:]

    var count: Int { calls.count }

    mutating func add(deadline: NIODeadline, completion: @escaping Completion) -> UInt64 {
        let id = nextID
        nextID &+= 1
        calls[id] = Call(deadline: deadline, completion: completion)
        return id
    }

    mutating func complete(id: UInt64) -> Completion? {
        calls.removeValue(forKey: id)?.completion
    }

    mutating func removeExpired(now: NIODeadline) -> [Completion] {
        let expired = calls.filter { $0.value.deadline <= now }
        for id in expired.keys { calls.removeValue(forKey: id) }
        return expired.values.map(\.completion)
    }

    mutating func removeAll() -> [Completion] {
        defer { calls.removeAll() }
        return calls.values.map(\.completion)
    }
}
