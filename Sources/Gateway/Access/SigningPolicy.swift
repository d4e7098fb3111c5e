import Ethereum

/// One `access.policies` entry: limits on what its tokens may sign from its addresses. Every policy that applies to
/// a request must allow it; a denial names the policy and the rule (JSON-RPC 4001), and comes before a nonce is
/// assigned.
public struct SigningPolicy: Sendable, Hashable {
    /// A recipient a transaction may go to, optionally only to call one function of it.
    public struct Recipient: Sendable, Hashable, CustomStringConvertible {
        public var address: Address
        /// The 4-byte function selector a call must start with; `nil`: any call, or plain value.
        public var selector: [UInt8]?

        public init(address: Address, selector: [UInt8]? = nil) {
            self.address = address
            self.selector = selector
        }

        public var description: String {
            address.checksummed + (selector.map { ":" + Hex.encode($0) } ?? "")
        }

        func allows(to: Address?, data: [UInt8]) -> Bool {
            guard to == address else { return false }
            guard let selector else { return true }
            return data.count >= 4 && Array(data.prefix(4)) == selector
        }
    }

    public var name: String
    /// The tokens (by name; `anonymous` for callers without one) it applies to; `nil`: every caller.
    public var tokens: Set<String>?
    /// The sending addresses it applies to; `nil`: every address.
    public var addresses: Set<Address>?
    public var maximumValuePerTransaction: UInt256?
    /// Over any 24 hours, per sending address, counting every transaction this policy let through.
    public var maximumValuePerDay: UInt256?
    /// Where transactions may go; `nil`: anywhere. Contract creation is never a listed recipient.
    public var recipients: [Recipient]?
    public var chainIDs: Set<UInt64>?
    /// Caps maxFeePerGas, or gasPrice.
    public var maximumFeePerGas: UInt256?
    /// EIP-712 domains' `verifyingContract`s typed data may be signed for; `nil`: any (permit signatures move
    /// tokens: list the contracts a dApp really needs).
    public var typedDataContracts: Set<Address>?

    public init(name: String) { self.name = name }

    func applies(to identity: Identity, from address: Address) -> Bool {
        (tokens?.contains(identity.name) ?? true) && (addresses?.contains(address) ?? true)
    }
}
