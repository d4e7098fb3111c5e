import Ethereum

/// One configured token (an `access.tokens` entry): who it is, its role, and what it may touch.
public struct AccessGrant: Sendable, Hashable {
    /// Names the caller in logs and errors; never the token.
    public var name: String
    public var role: Role
    public var digest: TokenDigest
    /// Addresses it may sign for and sees in `eth_accounts`; `nil`: every account of the wallet.
    public var addresses: Set<Address>?
    /// Methods it may call; `nil`: every method of its role.
    public var methods: Set<String>?
    /// Requests per second over all its connections (a burst of one second's worth); `nil`: no limit.
    public var requestsPerSecond: Double?
    /// Signing and sending requests per second; `nil`: no limit.
    public var transactionsPerSecond: Double?

    public init(name: String, role: Role, digest: TokenDigest) {
        self.name = name
        self.role = role
        self.digest = digest
    }
}
