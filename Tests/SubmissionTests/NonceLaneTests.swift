import Ethereum
import JSONRPC
import Signers
import Submission
import TestSupport
import Testing

/// The lane as a value: every invariant of the send pipeline, without a node or a backend.
@Suite struct NonceLaneTests {
    static let key = try! PrivateKey(hex: "0x0101010101010101010101010101010101010101010101010101010101010101")

    static func transfer(_ value: UInt64) -> Transaction {
        .dynamicFee(
            chainId: 1337, nonce: 0, maxPriorityFeePerGas: 1, maxFeePerGas: 100, gas: 21_000,
            to: key.address, value: UInt256(value))
    }

    /// Signs what a `.sign` action asks for, the way the pipeline's backend would.
    static func signing(
        _ actions: [NonceLane.Action]
    ) -> [(id: UInt64, nonce: UInt64, attempt: Int, signed: SignedTransaction)] {
        actions.compactMap { action in
            guard case .sign(let id, let transaction, let token) = action else { return nil }
            return (id, transaction.nonce, token, transaction.signed(with: key))
        }
    }

    static func submitted(_ actions: [NonceLane.Action]) -> [(UInt64, UInt64)] {
        actions.compactMap { action in
            guard case .submit(let id, let signed, _) = action else { return nil }
            return (id, signed.transaction.nonce)
        }
    }

    static func submitToken(_ actions: [NonceLane.Action]) -> Int? {
        for action in actions { if case .submit(_, _, let token) = action { return token } }
        return nil
    }
}

/// The test's view of the node: the submission token the lane is waiting on, answered by the test.
struct LaneDriver {
    var lane: NonceLane
    var token: Int?

    mutating func apply(_ actions: [NonceLane.Action]) -> [NonceLane.Action] {
        if let token = NonceLaneTests.submitToken(actions) { self.token = token }
        return actions
    }

    mutating func answer(_ id: UInt64, _ answer: NonceLane.Answer) -> [NonceLane.Action] {
        apply(lane.submissionAnswered(id, token: token ?? -1, answer))
    }
}

extension NonceLaneTests {

    @Test func firstRequestSyncsThenAssignsConsecutiveNonces() {
        var lane = NonceLane()
        #expect(lane.enqueue(1, Self.transfer(1)) == [.sync])
        #expect(lane.enqueue(2, Self.transfer(2)) == [])  // waits for the same sync
        let afterSync = lane.synced(nonce: 7)
        #expect(Self.signing(afterSync).map { [$0.id, $0.nonce] } == [[1, 7], [2, 8]])
        #expect(lane.next == 9)
        #expect(Self.signing(lane.enqueue(3, Self.transfer(3))).map(\.nonce) == [9])
    }

    @Test func signaturesArriveInAnyOrderSubmissionsGoInNonceOrderOneAtATime() {
        var driver = LaneDriver(lane: NonceLane(next: 0))
        let requests = (1...4).map { id in Self.signing(driver.lane.enqueue(UInt64(id), Self.transfer(UInt64(id))))[0] }
        // The backend answers 3, 2, 4 first: nothing may be sent before nonce 0.
        #expect(driver.lane.signed(3, token: requests[2].attempt, requests[2].signed) == [])
        #expect(driver.lane.signed(2, token: requests[1].attempt, requests[1].signed) == [])
        #expect(driver.lane.signed(4, token: requests[3].attempt, requests[3].signed) == [])
        let first = driver.apply(driver.lane.signed(1, token: requests[0].attempt, requests[0].signed))
        #expect(Self.submitted(first).map { $0.1 } == [0])
        // n+1 waits for n's answer from the node.
        var order: [UInt64] = [0]
        for id in 1...3 {
            let actions = driver.answer(UInt64(id), .accepted)
            if case .succeeded(let done, _) = actions.first {
                #expect(done == UInt64(id))
            } else {
                Issue.record("\(actions)")
            }
            order += Self.submitted(actions).map { $0.1 }
        }
        #expect(order == [0, 1, 2, 3])
        if case .succeeded(4, _) = driver.answer(4, .accepted).first {} else { Issue.record("last one must succeed") }
        #expect(driver.lane.pendingCount == 0)
        #expect(driver.lane.accepted.keys.sorted() == [0, 1, 2, 3])  // kept until mined
        driver.lane.mined(nonce: 2)
        #expect(driver.lane.accepted.keys.sorted() == [3])
    }

    @Test func aFailedSignatureLeavesNoGap() throws {
        var lane = NonceLane(next: 10)
        let requests = (1...4).map { id in Self.signing(lane.enqueue(UInt64(id), Self.transfer(UInt64(id))))[0] }
        _ = lane.signed(1, token: requests[0].attempt, requests[0].signed)  // nonce 10 goes to the node
        _ = lane.signed(3, token: requests[2].attempt, requests[2].signed)  // signed with nonce 12: now stale
        // Request 2 (nonce 11) fails for good: 3 and 4 move down to 11 and 12 and are signed again.
        let actions = lane.signFailed(2, token: requests[1].attempt, .rejected("key disabled"))
        #expect(actions.first == .failed(2, .signing(.rejected("key disabled"))))
        let resigned = Self.signing(actions)
        #expect(resigned.map { [$0.id, $0.nonce] } == [[3, 11], [4, 12]])
        #expect(lane.next == 13)
        // The old signature of request 3 (nonce 12) arrives late: ignored, never submitted.
        #expect(lane.signed(3, token: requests[2].attempt, requests[2].signed) == [])
        var driver = LaneDriver(lane: lane)
        _ = driver.apply(driver.lane.submissionAnswered(1, token: Self.headToken(actionsBefore: requests), .accepted))
        let three = resigned[0], four = resigned[1]
        #expect(
            Self.submitted(driver.apply(driver.lane.signed(3, token: three.attempt, three.signed))).map { $0.1 } == [11]
        )
        _ = driver.lane.signed(4, token: four.attempt, four.signed)
        #expect(Self.submitted(driver.answer(3, .accepted)).map { $0.1 } == [12])
    }

    /// The first submission's token: tokens are handed out in order, the first submit follows the four signs.
    static func headToken(
        actionsBefore requests: [(id: UInt64, nonce: UInt64, attempt: Int, signed: SignedTransaction)]
    ) -> Int {
        requests.map(\.attempt).max()! + 1
    }

    static let insufficientFunds = RPCError.server("insufficient funds for gas * price + value")

    /// A lane with `count` requests from `next`, all signed; the head is at the node.
    static func signedLane(next: UInt64, count: Int) -> LaneDriver {
        var driver = LaneDriver(lane: NonceLane(next: next))
        let requests = (1...count).map { id in
            Self.signing(driver.lane.enqueue(UInt64(id), Self.transfer(UInt64(id))))[0]
        }
        for request in requests {
            _ = driver.apply(driver.lane.signed(request.id, token: request.attempt, request.signed))
        }
        return driver
    }

    @Test func aNodeRejectionClosesTheGapBehindIt() {
        var driver = Self.signedLane(next: 0, count: 3)
        // Only nonce 0 is at the node; it is refused: 1 and 2 become 0 and 1.
        let actions = driver.answer(1, .rejected(Self.insufficientFunds))
        #expect(actions.first == .failed(1, .rejectedByNode(Self.insufficientFunds)))
        #expect(Self.signing(actions).map { [$0.id, $0.nonce] } == [[2, 0], [3, 1]])
        #expect(driver.lane.next == 2)
    }

    @Test func aTakenNonceResyncsAndRenumbersEverythingAboveIt() {
        var driver = Self.signedLane(next: 5, count: 3)
        // Someone used nonce 5 outside the gateway (a mined transaction, or one pending in the pool).
        #expect(driver.answer(1, .nonceTaken) == [.sync])
        // Even a node whose pending count still says 5 cannot make the lane reuse the taken nonce.
        let renumbered = driver.lane.synced(nonce: 5)
        #expect(Self.signing(renumbered).map { [$0.id, $0.nonce] } == [[1, 6], [2, 7], [3, 8]])
        #expect(driver.lane.next == 9)
        // No request failed: the clients never notice.
        #expect(!renumbered.contains { if case .failed = $0 { true } else { false } })
    }

    @Test func noVerdictResendsTheSameBytesAndNeverRenumbersThem() {
        var driver = Self.signedLane(next: 0, count: 2)
        var actions = driver.answer(1, .noVerdict(mayHaveReachedNode: true))
        guard case .retrySubmit(1, let token, 1)? = actions.first else { Issue.record("\(actions)"); return }
        actions = driver.apply(driver.lane.retryDue(1, token: token))
        guard case .submit(1, let again, _)? = actions.first else { Issue.record("\(actions)"); return }
        #expect(again.transaction.nonce == 0)  // identical bytes: a node that has them says "already known"
        // A refusal after bytes may have reached a node is no proof: the nonce stays theirs, the request waits.
        actions = driver.answer(1, .rejected(Self.insufficientFunds))
        #expect(!actions.contains { if case .failed = $0 { true } else { false } })
        if case .retrySubmit? = actions.last {} else { Issue.record("\(actions)") }
    }

    @Test func afterManyTriesWithoutVerdictTheClientIsToldOnceAndTheLaneKeepsTrying() {
        var settings = NonceLane.Settings()
        settings.submitAttemptsBeforeAnswer = 3
        var driver = LaneDriver(lane: NonceLane(next: 0, settings: settings))
        let request = Self.signing(driver.lane.enqueue(1, Self.transfer(1)))[0]
        _ = driver.apply(driver.lane.signed(1, token: request.attempt, request.signed))
        var told = 0
        for _ in 0..<6 {
            let actions = driver.answer(1, .noVerdict(mayHaveReachedNode: true))
            told += actions.filter { if case .outcomeUnknown = $0 { true } else { false } }.count
            guard case .retrySubmit(_, let token, _)? = actions.last else { Issue.record("\(actions)"); return }
            _ = driver.apply(driver.lane.retryDue(1, token: token))
        }
        #expect(told == 1)
        if case .succeeded(1, _)? = driver.answer(1, .accepted).first {} else { Issue.record("must still succeed") }
    }

    @Test func aNodeThatNeverGotTheBytesFailsTheRequestAfterItsTriesAndLeavesNoGap() {
        var settings = NonceLane.Settings()
        settings.unsentAttemptsBeforeFailure = 2
        var driver = LaneDriver(lane: NonceLane(next: 0, settings: settings))
        for id in 1...2 {
            let request = Self.signing(driver.lane.enqueue(UInt64(id), Self.transfer(UInt64(id))))[0]
            _ = driver.apply(driver.lane.signed(request.id, token: request.attempt, request.signed))
        }
        var actions = driver.answer(1, .noVerdict(mayHaveReachedNode: false))
        guard case .retrySubmit(_, let token, _)? = actions.last else { Issue.record("\(actions)"); return }
        _ = driver.apply(driver.lane.retryDue(1, token: token))
        actions = driver.answer(1, .noVerdict(mayHaveReachedNode: false))
        #expect(actions.first == .failed(1, .nodeUnavailable("the node could not be reached")))
        #expect(Self.signing(actions).map { [$0.id, $0.nonce] } == [[2, 0]])
    }

    @Test func aNonceGapSendsTheAcceptedOnesAgainFirst() {
        var driver = Self.signedLane(next: 0, count: 2)
        _ = driver.answer(1, .accepted)
        let actions = driver.answer(2, .nonceGap)  // the node lost nonce 0 (restarted without its pool)
        guard case .rebroadcast(let resend)? = actions.first else { Issue.record("\(actions)"); return }
        #expect(resend.map(\.transaction.nonce) == [0])
        if case .retrySubmit? = actions.last {} else { Issue.record("\(actions)") }
    }

    @Test func callerNoncesAreRequestsToTheLane() {
        var driver = Self.signedLane(next: 3, count: 1)
        _ = driver.answer(1, .accepted)  // nonce 3 is at the node, unmined
        #expect(driver.lane.classify(callerNonce: 4) == .next)
        guard case .replaces(let old) = driver.lane.classify(callerNonce: 3) else {
            Issue.record("not a replacement"); return
        }
        #expect(old.id == 1)
        #expect(driver.lane.classify(callerNonce: 1_000_000) == .refused(expected: 4))
        #expect(driver.lane.classify(callerNonce: 2) == .refused(expected: 4))
        #expect(NonceLane().classify(callerNonce: 0) == .unknown)
    }

    @Test func aRecoveringLaneAssignsNothingUntilRecovered() {
        var lane = NonceLane(recovering: true)
        #expect(lane.enqueue(1, Self.transfer(1)) == [])  // waits: the journal's records come first
        let old = Self.transfer(0).signed(with: Self.key)  // nonce 0, still pending at the node
        #expect(lane.recovered(accepted: [NonceLane.Accepted(id: 9, signed: old)]) == [.sync])
        // The node lost its pool (pending count 0): the recovered transaction still holds nonce 0.
        #expect(Self.signing(lane.synced(nonce: 0)).map(\.nonce) == [1])
    }

    @Test func stuckTransactionsAreSentAgainAndThenReplaced() {
        var settings = NonceLane.Settings()
        settings.rebroadcastEveryBlocks = 2
        settings.replaceAfterBlocks = 5
        var driver = LaneDriver(lane: NonceLane(next: 0, settings: settings))
        let request = Self.signing(driver.lane.enqueue(1, Self.transfer(1)))[0]
        _ = driver.apply(driver.lane.signed(1, token: request.attempt, request.signed))
        _ = driver.answer(1, .accepted)
        var events: [String] = []
        let start = ContinuousClock.now
        for head in UInt64(100)...106 {
            // A block every 10 s: both the block count and the time allow a resend.
            for action in driver.lane.newHead(head, now: start + .seconds(10 * Int(head - 100))) {
                switch action {
                case .rebroadcast: events.append("resend@\(head)")
                case .replaceStuck(1, _): events.append("replace@\(head)")
                default: break
                }
            }
        }
        // While its replacement is under way the original keeps being sent: it is still the one the node may mine.
        #expect(events == ["resend@102", "resend@104", "replace@105", "resend@106"])
    }

    @Test func fastBlocksDoNotMakeTheLaneFloodTheNode() {
        // An automining node makes a block per transaction: the resend waits for the interval, not just blocks.
        var driver = Self.signedLane(next: 0, count: 1)
        _ = driver.answer(1, .accepted)
        let start = ContinuousClock.now
        var resends = 0
        for head in UInt64(1)...300 {
            let actions = driver.lane.newHead(head, now: start + .milliseconds(20 * Int(head)))  // 50 blocks/s
            resends += actions.filter { if case .rebroadcast = $0 { true } else { false } }.count
        }
        #expect(resends == 0)  // 6 s of blocks, below the 12 s interval
        #expect(driver.lane.reconnected().count == 1)  // a reconnection sends it again at once
    }

    @Test func syncFailureFailsOnlyWhatWaitsForANonce() {
        var lane = NonceLane()
        _ = lane.enqueue(1, Self.transfer(1))
        _ = lane.enqueue(2, Self.transfer(2))
        let actions = lane.syncFailed(.nodeUnavailable("node down"))
        #expect(actions == [.failed(1, .nodeUnavailable("node down")), .failed(2, .nodeUnavailable("node down"))])
        #expect(lane.enqueue(3, Self.transfer(3)) == [.sync])  // the next request tries again
    }

    @Test func randomInterleavingsNeverRepeatAndNeverGapExceptOverTakenNonces() {
        // Property: whatever the order of signatures, failures and node answers, the nonces the node accepts only
        // rise, and every hole among them is a nonce the node said was taken by someone else.
        var generator = SeededGenerator.forTest("NonceLaneTests random interleavings")
        let seed = generator.seed
        for _ in 0..<200 {
            var lane = NonceLane(next: 100)
            var inFlightSigns: [(id: UInt64, attempt: Int, signed: SignedTransaction)] = []
            var atNode: (id: UInt64, nonce: UInt64, token: Int)? = nil
            var accepted: [UInt64] = []
            var nextID: UInt64 = 1
            func apply(_ actions: [NonceLane.Action]) {
                for action in actions {
                    switch action {
                    case .sign(let id, let transaction, let token):
                        inFlightSigns.append((id, token, transaction.signed(with: Self.key)))
                    case .submit(let id, let signed, let token): atNode = (id, signed.transaction.nonce, token)
                    default: break
                    }
                }
            }
            for _ in 0..<60 {
                switch Int.random(in: 0..<10, using: &generator) {
                case 0..<3:
                    apply(lane.enqueue(nextID, Self.transfer(nextID)))
                    nextID += 1
                case 3..<6 where !inFlightSigns.isEmpty:
                    let sign = inFlightSigns.remove(at: Int.random(in: 0..<inFlightSigns.count, using: &generator))
                    if Int.random(in: 0..<8, using: &generator) == 0 {
                        apply(lane.signFailed(sign.id, token: sign.attempt, .rejected("x")))
                    } else {
                        apply(lane.signed(sign.id, token: sign.attempt, sign.signed))
                    }
                case 6..<10 where atNode != nil:
                    let (id, nonce, token) = atNode!
                    atNode = nil
                    switch Int.random(in: 0..<10, using: &generator) {
                    case 0:
                        apply(lane.submissionAnswered(id, token: token, .rejected(.server("intrinsic gas too low"))))
                    case 1:
                        apply(lane.submissionAnswered(id, token: token, .nonceTaken))
                        apply(lane.synced(nonce: nonce + UInt64.random(in: 1...2, using: &generator)))
                    default:
                        accepted.append(nonce)
                        apply(lane.submissionAnswered(id, token: token, .accepted))
                    }
                default:
                    break
                }
            }
            #expect(
                accepted == accepted.sorted() && Set(accepted).count == accepted.count,
                "seed \(seed): accepted nonces \(accepted)")
        }
    }
}
