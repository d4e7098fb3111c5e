import Ethereum

/// How much a transaction at an occupied nonce must pay to replace the one there: geth's txpool refuses a
/// replacement unless both fee caps rise by at least `minimumPercent` (its `txpool.pricebump`, 10 %), and so do
/// Nethermind, Besu, Erigon and reth with the same default.
public enum FeeBump {
    public static let minimumPercent: UInt64 = 10

    /// Whether `new` is enough to replace a transaction paying `old`.
    public static func beats(_ new: Fees, _ old: Fees) -> Bool {
        switch (new, old) {
        case (.gasPrice(let price), .gasPrice(let oldPrice)):
            return price >= threshold(oldPrice)
        case (.dynamic(let tip, let cap), .dynamic(let oldTip, let oldCap)):
            return tip >= threshold(oldTip) && cap >= threshold(oldCap)
        case (.dynamic(let tip, let cap), .gasPrice(let oldPrice)):
            return tip >= threshold(oldPrice) && cap >= threshold(oldPrice)
        case (.gasPrice(let price), .dynamic(let oldTip, let oldCap)):
            return price >= threshold(oldTip) && price >= threshold(oldCap)
        }
    }

    /// The lowest fees that replace `old`.
    public static func minimum(over old: Fees) -> Fees {
        switch old {
        case .gasPrice(let price): .gasPrice(threshold(price))
        case .dynamic(let tip, let cap): .dynamic(maxPriorityFeePerGas: threshold(tip), maxFeePerGas: threshold(cap))
        }
    }

    /// `old` raised by `percent` (at least the minimum) and at least to `suggested` (today's market), with the fee
    /// cap limited to `cap`. `nil` when the cap does not leave room for a valid replacement.
    public static func bumped(_ old: Fees, percent: UInt64, suggested: Fees?, cap: UInt256?) -> Fees? {
        let percent = max(percent, minimumPercent)
        func raise(_ value: UInt256) -> UInt256 { max(scale(value, percent), threshold(value)) }
        switch old {
        case .gasPrice(let price):
            var new = raise(price)
            if case .gasPrice(let market)? = suggested { new = max(new, market) }
            if let cap, new > cap { new = cap }
            return new >= threshold(price) ? .gasPrice(new) : nil
        case .dynamic(let tip, let feeCap):
            var newTip = raise(tip)
            var newCap = raise(feeCap)
            if case .dynamic(let marketTip, let marketCap)? = suggested {
                newTip = max(newTip, marketTip)
                newCap = max(newCap, marketCap)
            }
            if let cap, newCap > cap { newCap = cap }
            newTip = min(newTip, newCap)
            guard newTip >= threshold(tip), newCap >= threshold(feeCap) else { return nil }
            return .dynamic(maxPriorityFeePerGas: newTip, maxFeePerGas: newCap)
        }
    }

    /// `value` × (100 + minimumPercent) / 100, rounded up (so that integer division never lands below geth's).
    static func threshold(_ value: UInt256) -> UInt256 {
        let scaled = value * UInt256(100 + minimumPercent)
        let (quotient, remainder) = scaled.quotientAndRemainder(dividingBy: 100)
        return remainder == 0 ? quotient : quotient + 1
    }

    private static func scale(_ value: UInt256, _ percent: UInt64) -> UInt256 {
        let (quotient, remainder) = (value * UInt256(100 + percent)).quotientAndRemainder(dividingBy: 100)
        return remainder == 0 ? quotient : quotient + 1
    }
}

extension Fees {
    /// The fee cap a node compares against the base fee.
    public var feeCap: UInt256 {
        switch self {
        case .gasPrice(let price): price
        case .dynamic(_, let cap): cap
        }
    }
}
