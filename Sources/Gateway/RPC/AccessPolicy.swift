import JSONRPC

/// Who is calling, as the dispatcher's policy sees it. Every connection is anonymous until access control lands
/// (tokens, roles, mTLS identities); the policy already decides on this value, in one place.
public struct Identity: Sendable, Hashable, CustomStringConvertible {
    public let name: String

    public init(name: String) { self.name = name }

    public static let anonymous = Identity(name: "anonymous")
    public var description: String { name }
}

/// Decides whether `identity` may make `request`, before any method runs (and so before any nonce is assigned):
/// `nil` lets it through, an error is the answer the caller gets.
public protocol AccessPolicy: Sendable {
    func check(_ request: RPCRequest, identity: Identity) -> RPCError?
}

/// Today's policy: everyone who reaches the port may call every method (browser pages are kept out by the
/// `Origin` check at the edge).
public struct AllowEveryone: AccessPolicy {
    public init() {}
    public func check(_ request: RPCRequest, identity: Identity) -> RPCError? { nil }
}

/// Told about every answered request, in one place, as it is answered: where metrics will be recorded.
public protocol RequestObserver: Sendable {
    func answered(method: String, error: RPCError?)
}
