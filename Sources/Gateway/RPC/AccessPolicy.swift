import Ethereum
import JSONRPC

/// Who is calling, as the dispatcher's policy sees it: the configured token it presented (or the anonymous caller,
/// where anonymous access is configured), its role and what it may touch.
public struct Identity: Sendable, Hashable, CustomStringConvertible {
    public let name: String
    public let role: Role
    /// Addresses it may sign for (and sees in `eth_accounts`); `nil`: every account.
    public let addresses: Set<Address>?
    /// Methods it may call; `nil`: every method of its role.
    public let methods: Set<String>?

    public init(name: String, role: Role, addresses: Set<Address>? = nil, methods: Set<String>? = nil) {
        self.name = name
        self.role = role
        self.addresses = addresses
        self.methods = methods
    }

    /// The caller where no access control applies (a dispatcher built without a policy, as in unit tests).
    public static let anonymous = Identity(name: "anonymous", role: .admin)
    public var description: String { name }

    public func mayUse(_ address: Address) -> Bool { addresses?.contains(address) ?? true }
}

/// Decides whether `identity` may make `request`, before any method runs (and so before any nonce is assigned):
/// `nil` lets it through, an error is the answer the caller gets.
public protocol AccessPolicy: Sendable {
    func check(_ request: RPCRequest, identity: Identity) -> RPCError?
}

/// No access control: everyone who reaches the port may call every method (unit tests of the dispatcher).
public struct AllowEveryone: AccessPolicy {
    public init() {}
    public func check(_ request: RPCRequest, identity: Identity) -> RPCError? { nil }
}

/// Told about every answered request, in one place, as it is answered: where metrics will be recorded.
public protocol RequestObserver: Sendable {
    func answered(method: String, error: RPCError?)
}
