/// The recent canonical chain as the receipt tracker knows it, as a value: block hashes by number for the last
/// `depth` blocks. It links each new head to what it knows — walking back through parents to the fork point after
/// a reorg of any depth, or filling the blocks a gap skipped (a reconnect; HTTP polling that sees tips only) — and
/// says which known blocks were orphaned. It does no I/O: when it needs a block it names it, the owner fetches it.
public struct CanonicalChain: Sendable {
    public struct Block: Sendable, Hashable {
        public let number: UInt64
        public let hash: String
        public let parentHash: String

        public init(number: UInt64, hash: String, parentHash: String) {
            (self.number, self.hash, self.parentHash) = (number, hash, parentHash)
        }
    }

    public enum Step: Sendable, Equatable {
        /// The segment links to the chain. `newBlocks` (oldest first) are canonical now; every known block from
        /// `orphanedFrom` up to the old tip was replaced (`nil`: none was).
        case connected(newBlocks: [Block], orphanedFrom: UInt64?)
        /// The parent of the segment's oldest block is unknown: fetch the block with this hash, append it to the
        /// segment (as its new oldest block) and connect again.
        case needBlock(hash: String, number: UInt64)
    }

    public let depth: UInt64
    /// How many parents are fetched to fill a gap (heads skipped while the tracker was busy, a reconnection) before
    /// the segment is accepted without linking: a gap is not a reorg, and walking it block by block would only make
    /// the tracker fall further behind.
    public let maximumGapWalk: UInt64
    private var hashes: [UInt64: String] = [:]
    public private(set) var tip: UInt64?

    public init(depth: UInt64 = 128, maximumGapWalk: UInt64 = 32) {
        self.depth = max(depth, 2)
        self.maximumGapWalk = max(maximumGapWalk, 1)
    }

    /// The canonical hash at `number`, if it is recent enough to be known.
    public func hash(at number: UInt64) -> String? { hashes[number] }

    /// Links `segment` (newest first: the new head, then the parents fetched so far) to the chain.
    public mutating func connect(_ segment: [Block]) -> Step {
        // Blocks already canonical (a repeated head, or parents fetched up to a known block) need nothing.
        var segment = segment
        while let oldest = segment.last, hashes[oldest.number] == oldest.hash { segment.removeLast() }
        guard let oldest = segment.last, let tip else {
            return accept(segment, orphanedFrom: nil)
        }
        let lowestKnown = tip >= depth ? tip - depth + 1 : 0
        let orphanedFrom: UInt64? = oldest.number <= tip ? oldest.number : nil
        if oldest.number == 0 || hashes[oldest.number - 1] == oldest.parentHash {
            return accept(segment, orphanedFrom: orphanedFrom)
        }
        if oldest.number > tip + 1 {
            // Still above the known tip: a gap. Fill a little of it; past that, accept without linking.
            if UInt64(segment.count) <= maximumGapWalk {
                return .needBlock(hash: oldest.parentHash, number: oldest.number - 1)
            }
            return accept(segment, orphanedFrom: nil)
        }
        // Deeper than what is remembered: everything known from the segment's start (or the oldest known block)
        // is treated as replaced, so that every receipt in it is looked up again.
        if oldest.number - 1 < lowestKnown || UInt64(segment.count) >= depth {
            return accept(segment, orphanedFrom: min(oldest.number, lowestKnown))
        }
        return .needBlock(hash: oldest.parentHash, number: oldest.number - 1)
    }

    private mutating func accept(_ segment: [Block], orphanedFrom: UInt64?) -> Step {
        let blocks = Array(segment.reversed())
        guard let newest = blocks.last, let first = blocks.first else {
            return .connected(newBlocks: [], orphanedFrom: nil)
        }
        if let tip, first.number <= tip {
            for number in first.number...tip { hashes.removeValue(forKey: number) }
        }
        for block in blocks { hashes[block.number] = block.hash }
        tip = newest.number
        let lowest = newest.number >= depth ? newest.number - depth + 1 : 0
        hashes = hashes.filter { $0.key >= lowest && $0.key <= newest.number }
        return .connected(newBlocks: blocks, orphanedFrom: orphanedFrom)
    }
}
