import Ethereum
import JSON
import JSONRPC
import Synchronization

/// The configured `SigningPolicy`s, applied to transactions (once filled: chain id and fees are known) and to typed
/// data, before anything is signed. Holds the 24-hour value spent per policy and address.
public final class SigningPolicies: Sendable {
    private let policies: [SigningPolicy]
    /// Value let through per policy and sending address, with when: for `maximumValuePerDay`.
    private let spent = Mutex<[String: [(at: ContinuousClock.Instant, value: UInt256)]]>([:])

    public init(_ policies: [SigningPolicy]) { self.policies = policies }

    public var isEmpty: Bool { policies.isEmpty }

    /// `nil` if every applicable policy allows `transaction` from `from`; its value then counts toward the daily
    /// caps (also if the send fails later: a cap errs on the side of the money).
    public func approve(
        _ transaction: Transaction, from: Address, identity: Identity, now: ContinuousClock.Instant = .now
    ) -> RPCError? {
        let applicable = policies.filter { $0.applies(to: identity, from: from) }
        for policy in applicable {
            if let denial = Self.check(policy, transaction) { return denial }
        }
        // Daily caps last: checked and counted at once, so two concurrent sends cannot both slip under one cap.
        return spent.withLock { spent -> RPCError? in
            let day = now - .seconds(86_400)
            for policy in applicable {
                guard let cap = policy.maximumValuePerDay else { continue }
                let key = policy.name + "/" + from.lowercaseHex
                spent[key] = spent[key]?.filter { $0.at > day }
                let total = (spent[key] ?? []).reduce(UInt256.zero) { $0 + $1.value }
                let (sum, overflow) = total.addingReportingOverflow(transaction.value)
                if overflow || sum > cap {
                    return Self.denial(
                        policy, "maxValuePerDay",
                        "\(from.checksummed) has sent \(total.decimalString) wei in 24 h; "
                            + "\(transaction.value.decimalString) more would pass the cap of \(cap.decimalString) wei")
                }
            }
            for policy in applicable where policy.maximumValuePerDay != nil {
                spent[policy.name + "/" + from.lowercaseHex, default: []].append((now, transaction.value))
            }
            return nil
        }
    }

    /// `nil` if every applicable policy allows signing `typedData` (EIP-712, as JSON) for `from`.
    public func approveTypedData(_ typedData: JSONValue, from: Address, identity: Identity) -> RPCError? {
        let domain = typedData["domain"]
        for policy in policies where policy.applies(to: identity, from: from) {
            if let contracts = policy.typedDataContracts {
                let contract = domain?["verifyingContract"]?.stringValue.flatMap { try? Address(hex: $0) }
                guard let contract, contracts.contains(contract) else {
                    return Self.denial(
                        policy, "typedDataContracts",
                        "typed data for \(contract?.checksummed ?? "no verifyingContract") is not allowed")
                }
            }
            if let chains = policy.chainIDs, let chain = domain?["chainId"].flatMap(Self.chainID),
                !chains.contains(chain)
            {
                return Self.denial(policy, "chainIds", "typed data for chain \(chain) is not allowed")
            }
        }
        return nil
    }

    private static func check(_ policy: SigningPolicy, _ transaction: Transaction) -> RPCError? {
        if let cap = policy.maximumValuePerTransaction, transaction.value > cap {
            return denial(
                policy, "maxValuePerTransaction",
                "\(transaction.value.decimalString) wei is more than \(cap.decimalString) wei")
        }
        if let recipients = policy.recipients,
            !recipients.contains(where: { $0.allows(to: transaction.to, data: transaction.data) })
        {
            let target = transaction.to?.checksummed ?? "a contract creation"
            let call = transaction.data.count >= 4 ? " calling \(Hex.encode(Array(transaction.data.prefix(4))))" : ""
            return denial(policy, "recipients", "\(target)\(call) is not an allowed recipient")
        }
        if let chains = policy.chainIDs {
            guard let chain = transaction.chainId, chains.contains(chain) else {
                return denial(
                    policy, "chainIds", "chain \(transaction.chainId.map(String.init) ?? "none") is not allowed")
            }
        }
        if let cap = policy.maximumFeePerGas {
            let fee: UInt256
            switch transaction.fees {
            case .gasPrice(let price): fee = price
            case .dynamic(_, let maxFeePerGas): fee = maxFeePerGas
            }
            if fee > cap {
                return denial(
                    policy, "maxFeePerGas", "a fee of \(fee.decimalString) wei/gas is more than \(cap.decimalString)")
            }
        }
        return nil
    }

    private static func denial(_ policy: SigningPolicy, _ rule: String, _ detail: String) -> RPCError {
        RPCError(
            code: 4001, message: "denied by policy \(policy.name) (\(rule)): \(detail); nothing was signed",
            data: ["policy": .string(policy.name), "rule": .string(rule)])
    }

    private static func chainID(_ value: JSONValue) -> UInt64? {
        if let text = value.stringValue { return text.hasPrefix("0x") ? try? Hex.decodeQuantity(text) : UInt64(text) }
        return value.numberText.flatMap { UInt64($0) }
    }
}
