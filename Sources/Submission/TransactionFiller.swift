import Ethereum
import JSON
import JSONRPC
import Node
import Signers
import Synchronization

/// Completes what the caller of `eth_sendTransaction` left out, the way wallets do: chain id from the node, gas from
/// `eth_estimateGas` plus a margin, EIP-1559 fees from the next block's base fee and the node's suggested tip (legacy
/// `gasPrice` when the caller gave one or the chain has no base fee; EIP-2930 when an access list comes with a gas
/// price). The nonce is not chosen here: the address's lane assigns it.
///
/// The envelope is one the sender's backend can sign (`TransactionSupport`): for a legacy-only signer (Vault's
/// ethsign plugin) a request that leaves the type open becomes legacy, and one that names EIP-1559 fees is refused,
/// or sent as legacy with `gasPrice = maxFeePerGas` when that backend allows it. Deciding here, before the nonce and
/// the journal, is what lets the wallet hold the backend to exactly the transaction requested.
public final class TransactionFiller: Sendable {
    public struct Settings: Sendable, Hashable {
        /// Added to `eth_estimateGas`'s answer: state can change between estimate and inclusion.
        public var gasMarginPercent = 20
        /// maxFeePerGas = multiplier × next base fee + tip: room for the base fee to rise for a few blocks.
        public var baseFeeMultiplier = 2
        /// How long fee suggestions are reused (they change once per block at most).
        public var feeCacheMilliseconds = 1_000

        public init() {}
    }

    private struct FeeData: Sendable {
        let baseFee: UInt256?
        let tip: UInt256
        let gasPrice: UInt256
        let fetched: ContinuousClock.Instant
    }

    private let node: any NodeClient
    private let settings: Settings
    private let support: @Sendable (Address) -> TransactionSupport
    private let chainIDCache = Mutex<UInt64?>(nil)
    private let feeCache = Mutex<FeeData?>(nil)

    /// `support`: what the backend holding an address can sign (`Wallet.transactionSupport`).
    public init(
        node: any NodeClient, settings: Settings = Settings(),
        support: @escaping @Sendable (Address) -> TransactionSupport = { _ in .all }
    ) {
        self.node = node
        self.settings = settings
        self.support = support
    }

    /// The request as the sender's backend can sign it (see the type's documentation).
    public static func adapt(
        _ request: TransactionRequest, to support: TransactionSupport
    ) throws(RPCError) -> TransactionRequest {
        guard support.legacyOnly else { return request }
        let sender = request.from.checksummed
        if request.type == .accessList || request.accessList?.isEmpty == false {
            throw .invalidParams(
                "\(sender) is held by a backend that signs only legacy (EIP-155) transactions: no access list")
        }
        var adapted = request
        if request.type == .dynamicFee || request.maxFeePerGas != nil || request.maxPriorityFeePerGas != nil {
            guard support.dynamicFeeAsLegacy else {
                throw .invalidParams(
                    "\(sender) is held by a backend that signs only legacy (EIP-155) transactions: give gasPrice "
                        + "instead of maxFeePerGas and maxPriorityFeePerGas (or set legacyForDynamicFee on the "
                        + "backend)")
            }
            // The most the caller agreed to pay per gas; a legacy transaction pays all of it.
            adapted.gasPrice = request.maxFeePerGas ?? request.gasPrice
            adapted.maxFeePerGas = nil
            adapted.maxPriorityFeePerGas = nil
        }
        adapted.type = .legacy
        adapted.accessList = nil
        return adapted
    }

    /// Forgets cached chain data (after the node reconnects: it may be a different node).
    public func reset() {
        chainIDCache.withLock { $0 = nil }
        feeCache.withLock { $0 = nil }
    }

    public func chainID() async throws(RPCError) -> UInt64 {
        if let cached = chainIDCache.withLock({ $0 }) { return cached }
        let value = try await call("eth_chainId", [])
        guard let text = value.stringValue, let chainID = try? Hex.decodeQuantity(text) else {
            throw .server("node answered eth_chainId with \(JSONWriter.string(value))")
        }
        chainIDCache.withLock { $0 = chainID }
        return chainID
    }

    /// The transaction, when the caller gave everything (nonce, gas, fees) and the chain id is known: no node call
    /// needed. `nil` means "use `fill`".
    public func fillNow(_ request: TransactionRequest) throws(RPCError) -> Transaction? {
        let request = try Self.adapt(request, to: support(request.from))
        guard let nonce = request.nonce, let gas = request.gas, let chainID = chainIDCache.withLock({ $0 }) else {
            return nil
        }
        if let given = request.chainId, given != chainID {
            throw .invalidParams("chainId does not match node's (have=\(given), want=\(chainID))")
        }
        let type: TransactionType
        let fees: Fees
        if let price = request.gasPrice, request.type != .dynamicFee {
            type = request.type ?? (request.accessList == nil ? .legacy : .accessList)
            fees = .gasPrice(price)
        } else if let cap = request.maxFeePerGas, let tip = request.maxPriorityFeePerGas,
            request.type ?? .dynamicFee == .dynamicFee
        {
            type = .dynamicFee
            fees = .dynamic(maxPriorityFeePerGas: tip, maxFeePerGas: cap)
        } else {
            return nil
        }
        do {
            return try Transaction(
                type: type, chainId: chainID, nonce: nonce, fees: fees, gas: gas, to: request.to,
                value: request.value ?? .zero, data: request.data, accessList: request.accessList ?? [])
        } catch {
            throw .invalidParams(error.description)
        }
    }

    /// A complete unsigned transaction; its nonce is the caller's, or 0 as a placeholder for the lane.
    public func fill(_ request: TransactionRequest) async throws(RPCError) -> Transaction {
        let request = try Self.adapt(request, to: support(request.from))
        let chainID = try await chainID()
        if let given = request.chainId, given != chainID {
            throw .invalidParams("chainId does not match node's (have=\(given), want=\(chainID))")
        }
        let gas: UInt64
        if let given = request.gas {
            gas = given
        } else {
            let estimate = try await call("eth_estimateGas", [request.estimateJSON])
            guard let text = estimate.stringValue, let estimated = try? Hex.decodeQuantity(text) else {
                throw .server("node answered eth_estimateGas with \(JSONWriter.string(estimate))")
            }
            gas = estimated + estimated * UInt64(settings.gasMarginPercent) / 100
        }
        let type = try await chooseType(request)
        let fees: Fees
        switch type {
        case .legacy, .accessList:
            let price: UInt256
            if let given = request.gasPrice { price = given } else { price = try await feeData().gasPrice }
            fees = .gasPrice(price)
        case .dynamicFee:
            let data = try await feeData()
            let tip = request.maxPriorityFeePerGas ?? min(data.tip, request.maxFeePerGas ?? data.tip)
            let cap: UInt256
            if let given = request.maxFeePerGas {
                cap = given
            } else {
                let base = data.baseFee ?? .zero
                cap = base * UInt256(UInt64(settings.baseFeeMultiplier)) + tip
            }
            guard tip <= cap else { throw .invalidParams("maxFeePerGas (\(cap)) < maxPriorityFeePerGas (\(tip))") }
            fees = .dynamic(maxPriorityFeePerGas: tip, maxFeePerGas: cap)
        }
        do {
            return try Transaction(
                type: type, chainId: chainID, nonce: request.nonce ?? 0, fees: fees, gas: gas, to: request.to,
                value: request.value ?? .zero, data: request.data, accessList: request.accessList ?? [])
        } catch {
            throw .invalidParams(error.description)
        }
    }

    private func chooseType(_ request: TransactionRequest) async throws(RPCError) -> TransactionType {
        if let type = request.type {
            if type == .legacy && request.accessList?.isEmpty == false {
                throw .invalidParams("legacy transactions cannot carry an access list")
            }
            if type == .dynamicFee && request.gasPrice != nil {
                throw .invalidParams("gasPrice given for a type 2 transaction; use maxFeePerGas")
            }
            if type != .dynamicFee && (request.maxFeePerGas != nil || request.maxPriorityFeePerGas != nil) {
                throw .invalidParams("maxFeePerGas given for a type \(type.rawValue) transaction; use gasPrice")
            }
            return type
        }
        if request.gasPrice != nil { return request.accessList == nil ? .legacy : .accessList }
        if request.maxFeePerGas != nil || request.maxPriorityFeePerGas != nil { return .dynamicFee }
        return try await feeData().baseFee == nil ? (request.accessList == nil ? .legacy : .accessList) : .dynamicFee
    }

    /// Today's fees for a transaction of `type`, as `fill` would choose them (a replacement pays at least these).
    public func suggestedFees(for type: TransactionType) async throws(RPCError) -> Fees {
        let data = try await feeData()
        switch type {
        case .legacy, .accessList:
            return .gasPrice(data.gasPrice)
        case .dynamicFee:
            let cap = (data.baseFee ?? .zero) * UInt256(UInt64(settings.baseFeeMultiplier)) + data.tip
            return .dynamic(maxPriorityFeePerGas: data.tip, maxFeePerGas: cap)
        }
    }

    private func feeData() async throws(RPCError) -> FeeData {
        let now = ContinuousClock.now
        if let cached = feeCache.withLock({ $0 }), now - cached.fetched < .milliseconds(settings.feeCacheMilliseconds) {
            return cached
        }
        let history = try await call("eth_feeHistory", ["0x1", "latest", .array([])])
        let baseFee = history["baseFeePerGas"]?.arrayValue?.last?.stringValue.flatMap { try? UInt256(hexQuantity: $0) }
        let tip: UInt256
        switch await node.call(method: "eth_maxPriorityFeePerGas", params: .array([])) {
        case .success(let value): tip = value.stringValue.flatMap { try? UInt256(hexQuantity: $0) } ?? 1_000_000_000
        case .failure: tip = 1_000_000_000  // nodes without the method: 1 gwei, geth's default suggestion floor
        }
        let gasPrice: UInt256
        if let baseFee {
            gasPrice = baseFee * UInt256(UInt64(settings.baseFeeMultiplier)) + tip
        } else {
            let value = try await call("eth_gasPrice", [])
            gasPrice = value.stringValue.flatMap { try? UInt256(hexQuantity: $0) } ?? tip
        }
        let data = FeeData(baseFee: baseFee, tip: tip, gasPrice: gasPrice, fetched: now)
        feeCache.withLock { $0 = data }
        return data
    }

    private func call(_ method: String, _ params: [JSONValue]) async throws(RPCError) -> JSONValue {
        try await node.call(method, params)
    }
}
