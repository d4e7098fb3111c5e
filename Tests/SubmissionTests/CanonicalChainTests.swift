import Submission
import Testing

/// Reorg detection as a value: heads in, steps out.
@Suite struct CanonicalChainTests {
    static func block(_ number: UInt64, _ fork: String = "a") -> CanonicalChain.Block {
        .init(number: number, hash: "\(fork)\(number)", parentHash: number == 0 ? "genesis" : "\(fork)\(number - 1)")
    }

    /// Connects `head`, fetching parents from `chain` (the node's view) as the tracker would.
    static func connect(
        _ head: CanonicalChain.Block, into known: inout CanonicalChain,
        node: [String: CanonicalChain.Block]
    ) -> (new: [UInt64], orphanedFrom: UInt64?, fetched: Int) {
        var segment = [head]
        var fetched = 0
        while true {
            switch known.connect(segment) {
            case .connected(let blocks, let orphanedFrom): return (blocks.map(\.number), orphanedFrom, fetched)
            case .needBlock(let hash, _):
                fetched += 1
                segment.append(node[hash]!)
            }
        }
    }

    static func chain(
        _ range: ClosedRange<UInt64>, _ fork: String = "a", parentFork: String? = nil,
        forkAt: UInt64? = nil
    ) -> [String: CanonicalChain.Block] {
        var blocks: [String: CanonicalChain.Block] = [:]
        for number in range {
            let parent = (forkAt == number ? parentFork! : fork) + "\(number - 1)"
            blocks["\(fork)\(number)"] = .init(number: number, hash: "\(fork)\(number)", parentHash: parent)
        }
        return blocks
    }

    @Test func consecutiveHeadsExtendTheChain() {
        var known = CanonicalChain()
        for number in UInt64(1)...5 {
            let step = Self.connect(Self.block(number), into: &known, node: [:])
            #expect(step.new == [number] && step.orphanedFrom == nil)
        }
        #expect(known.tip == 5)
    }

    @Test func aGapIsFilledFromParents() {
        var known = CanonicalChain()
        _ = Self.connect(Self.block(10), into: &known, node: [:])
        let step = Self.connect(Self.block(13), into: &known, node: Self.chain(11...13))
        #expect(step.new == [11, 12, 13] && step.orphanedFrom == nil && step.fetched == 2)
    }

    @Test func aLongGapIsNotMistakenForAReorg() {
        var known = CanonicalChain(depth: 128, maximumGapWalk: 4)
        _ = Self.connect(Self.block(10), into: &known, node: [:])
        // Hundreds of heads were skipped while the tracker was busy: a few parents are fetched, nothing is orphaned.
        let step = Self.connect(Self.block(500), into: &known, node: Self.chain(400...500))
        #expect(step.orphanedFrom == nil)
        #expect(step.fetched == 4)
        #expect(known.tip == 500)
    }

    @Test func aDeepReorgIsWalkedBackToTheForkPoint() {
        var known = CanonicalChain()
        for number in UInt64(1)...10 { _ = Self.connect(Self.block(number), into: &known, node: [:]) }
        // Blocks 7…10 are replaced by b7…b11, forked from a6: only tips were seen (HTTP polling).
        let other = Self.chain(7...11, "b", parentFork: "a", forkAt: 7)
        let step = Self.connect(other["b11"]!, into: &known, node: other)
        #expect(step.new == [7, 8, 9, 10, 11])
        #expect(step.orphanedFrom == 7)
        #expect(known.hash(at: 8) == "b8" && known.hash(at: 6) == "a6")
    }

    @Test func aShorterReplacementChainOrphansEverythingAboveIt() {
        var known = CanonicalChain()
        for number in UInt64(1)...10 { _ = Self.connect(Self.block(number), into: &known, node: [:]) }
        let other = Self.chain(9...9, "b", parentFork: "a", forkAt: 9)
        let step = Self.connect(other["b9"]!, into: &known, node: other)
        #expect(step.new == [9] && step.orphanedFrom == 9 && known.tip == 9 && known.hash(at: 10) == nil)
    }

    @Test func aRepeatedHeadChangesNothing() {
        var known = CanonicalChain()
        _ = Self.connect(Self.block(1), into: &known, node: [:])
        let step = Self.connect(Self.block(1), into: &known, node: [:])
        #expect(step.new.isEmpty && step.orphanedFrom == nil)
    }

    @Test func aReorgDeeperThanRememberedOrphansAllThatIsKnown() {
        var known = CanonicalChain(depth: 4)
        for number in UInt64(1)...10 { _ = Self.connect(Self.block(number), into: &known, node: [:]) }
        let other = Self.chain(3...10, "c", parentFork: "a", forkAt: 3)
        let step = Self.connect(other["c10"]!, into: &known, node: other)
        #expect(step.orphanedFrom == 7)  // the oldest remembered block: every receipt from there is looked up again
        #expect(known.hash(at: 10) == "c10")
    }
}
