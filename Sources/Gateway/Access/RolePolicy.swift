import Ethereum
import JSON
import JSONRPC
import Signers
import Synchronization

/// The access policy of a gateway with access control: each request is checked against its caller's role, method
/// list, addresses and rates before any method runs, so a denial assigns no nonce and signs nothing.
public final class RolePolicy: AccessPolicy {
    /// Administration methods: keys and the gateway itself. Only `admin` may call them.
    public static let adminMethods: Set<String> = [
        "signer_refreshAccounts", "signer_createAccount", "signer_importAccount", "signer_deleteAccount",
        "signer_backends", "signer_pendingTransactions", "signer_lanes",
    ]

    /// Methods that sign or send for an address, and where in their params the address is.
    static let signingMethods: [String: AddressPosition] = [
        "eth_sendTransaction": .fromField, "signer_sendTransactionAndWatch": .fromField,
        "eth_signTransaction": .fromField, "eth_sign": .param(0), "personal_sign": .param(1),
        "eth_signTypedData_v4": .param(0), "eth_signTypedData_v3": .param(0),
    ]
    /// Methods that act on a transaction by hash: its sender is known only to the pipeline.
    static let byHashMethods: Set<String> = ["signer_speedUpTransaction", "signer_cancelTransaction"]

    enum AddressPosition: Equatable {
        case fromField
        case param(Int)
    }

    private let grants: [String: AccessGrant]
    private let signingPolicies: SigningPolicies
    private let requestBuckets = Mutex<[String: TokenBucket]>([:])
    private let transactionBuckets = Mutex<[String: TokenBucket]>([:])

    public init(grants: [AccessGrant], signingPolicies: SigningPolicies = SigningPolicies([])) {
        self.grants = Dictionary(grants.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.signingPolicies = signingPolicies
    }

    public func check(_ request: RPCRequest, identity: Identity) -> RPCError? {
        let method = request.method
        if let methods = identity.methods, !methods.contains(method) {
            return .unsupportedMethod("\(method) is not allowed for \(identity.name) (its token's methods list)")
        }
        if Self.adminMethods.contains(method), identity.role != .admin {
            return .unauthorized("\(method) needs the admin role; \(identity.name) has the \(identity.role) role")
        }
        if let position = Self.signingMethods[method], identity.addresses != nil {
            guard let address = Self.address(in: request, at: position) else {
                return .invalidParams("\(method): the signing address is missing or not an address")
            }
            guard identity.mayUse(address) else {
                return .unauthorized("\(identity.name) may not use \(address.checksummed)")
            }
        }
        if method.hasPrefix("eth_signTypedData_v"), !signingPolicies.isEmpty,
            let params = try? request.positionalParams(), params.count >= 2,
            let from = params[0].stringValue.flatMap({ try? Address(hex: $0) })
        {
            // The typed data comes as a JSON object or as its text (MetaMask's form).
            let typedData = params[1].stringValue.flatMap { try? JSONParser.parse($0) } ?? params[1]
            if let denial = signingPolicies.approveTypedData(typedData, from: from, identity: identity) {
                return denial
            }
        }
        if Self.byHashMethods.contains(method), identity.addresses != nil {
            return .unauthorized(
                "\(method) needs a token that may use every address; \(identity.name) is limited to some")
        }
        let now = ContinuousClock.now
        if let rate = grants[identity.name]?.requestsPerSecond,
            let wait = requestBuckets.withLock({ $0[identity.name, default: TokenBucket(rate: rate)].take(at: now) })
        {
            return Self.overRate(wait, "\(rate) requests/s", identity)
        }
        if Self.signingMethods[method] != nil, let rate = grants[identity.name]?.transactionsPerSecond,
            let wait = transactionBuckets.withLock({
                $0[identity.name, default: TokenBucket(rate: rate)].take(at: now)
            })
        {
            return Self.overRate(wait, "\(rate) signatures/s", identity)
        }
        return nil
    }

    private static func overRate(_ wait: Duration, _ limit: String, _ identity: Identity) -> RPCError {
        let rounded = (wait.inSeconds * 1000).rounded(.up) / 1000
        return RPCError(
            code: -32005, message: "rate limit of \(identity.name) (\(limit)) reached; retry in \(rounded) s",
            data: .object(JSONObject([("retryAfterSeconds", .number(String(rounded)))])))
    }

    static func address(in request: RPCRequest, at position: AddressPosition) -> Address? {
        guard let params = try? request.positionalParams() else { return nil }
        let text: String?
        switch position {
        case .fromField: text = params.first?["from"]?.stringValue
        case .param(let index): text = params.indices.contains(index) ? params[index].stringValue : nil
        }
        return text.flatMap { try? Address(hex: $0) }
    }
}
