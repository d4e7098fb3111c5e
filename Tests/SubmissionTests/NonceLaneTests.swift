import Ethereum
import Signers
import Submission
import Testing

/// The lane as a value: every invariant of the send pipeline, without a node or a backend.
@Suite struct NonceLaneTests {
    static let key = try! PrivateKey(hex: "0x0101010101010101010101010101010101010101010101010101010101010101")

    static func transfer(_ value: UInt64) -> Transaction {
        .dynamicFee(chainId: 1337, nonce: 0, maxPriorityFeePerGas: 1, maxFeePerGas: 100, gas: 21_000,
                    to: key.address, value: UInt256(value))
    }

    /// Signs what a `.sign` action asks for, the way the pipeline's backend would.
    static func signing(_ actions: [NonceLane.Action]) -> [(id: UInt64, nonce: UInt64, attempt: Int, signed: SignedTransaction)] {
        actions.compactMap { action in
            guard case .sign(let id, let transaction, let attempt) = action else { return nil }
            return (id, transaction.nonce, attempt, transaction.signed(with: key))
        }
    }

    static func submitted(_ actions: [NonceLane.Action]) -> [(UInt64, UInt64)] {
        actions.compactMap { action in
            guard case .submit(let id, let signed) = action else { return nil }
            return (id, signed.transaction.nonce)
        }
    }

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
        var lane = NonceLane(next: 0)
        let requests = (1...4).map { id in Self.signing(lane.enqueue(UInt64(id), Self.transfer(UInt64(id))))[0] }
        // The backend answers 3, 2, 4 first: nothing may be sent before nonce 0.
        #expect(lane.signed(3, attempt: requests[2].attempt, requests[2].signed) == [])
        #expect(lane.signed(2, attempt: requests[1].attempt, requests[1].signed) == [])
        #expect(lane.signed(4, attempt: requests[3].attempt, requests[3].signed) == [])
        #expect(Self.submitted(lane.signed(1, attempt: requests[0].attempt, requests[0].signed)).map { $0.1 } == [0])
        // n+1 waits for n's answer from the node.
        var order: [UInt64] = [0]
        for id in 1...3 {
            let actions = lane.submitted(UInt64(id))
            if case .succeeded(let done, _) = actions.first { #expect(done == UInt64(id)) } else { Issue.record("\(actions)") }
            order += Self.submitted(actions).map { $0.1 }
        }
        #expect(order == [0, 1, 2, 3])
        if case .succeeded(4, _) = lane.submitted(4).first {} else { Issue.record("last one must succeed") }
        #expect(lane.pendingCount == 0)
    }

    @Test func aFailedSignatureLeavesNoGap() throws {
        var lane = NonceLane(next: 10)
        let requests = (1...4).map { id in Self.signing(lane.enqueue(UInt64(id), Self.transfer(UInt64(id))))[0] }
        _ = lane.signed(1, attempt: requests[0].attempt, requests[0].signed)  // nonce 10 goes to the node
        _ = lane.signed(3, attempt: requests[2].attempt, requests[2].signed)  // signed with nonce 12: now stale
        // Request 2 (nonce 11) fails for good: 3 and 4 move down to 11 and 12 and are signed again.
        let actions = lane.signFailed(2, attempt: requests[1].attempt, .rejected("key disabled"))
        #expect(actions.first == .failed(2, .signing(.rejected("key disabled"))))
        let resigned = Self.signing(actions)
        #expect(resigned.map { [$0.id, $0.nonce] } == [[3, 11], [4, 12]])
        #expect(lane.next == 13)
        // The old signature of request 3 (nonce 12) arrives late: ignored, never submitted.
        #expect(lane.signed(3, attempt: requests[2].attempt, requests[2].signed) == [])
        _ = lane.submitted(1)
        let three = resigned[0], four = resigned[1]
        #expect(Self.submitted(lane.signed(3, attempt: three.attempt, three.signed)).map { $0.1 } == [11])
        _ = lane.signed(4, attempt: four.attempt, four.signed)
        #expect(Self.submitted(lane.submitted(3)).map { $0.1 } == [12])
    }

    @Test func aNodeRejectionClosesTheGapBehindIt() {
        var lane = NonceLane(next: 0)
        let requests = (1...3).map { id in Self.signing(lane.enqueue(UInt64(id), Self.transfer(UInt64(id))))[0] }
        for request in requests { _ = lane.signed(request.id, attempt: request.attempt, request.signed) }
        // Only nonce 0 is at the node; it is refused: 1 and 2 become 0 and 1.
        let actions = lane.submitFailed(1, code: -32000, message: "insufficient funds for gas * price + value")
        #expect(actions.first == .failed(1, .rejectedByNode(code: -32000, message: "insufficient funds for gas * price + value")))
        #expect(Self.signing(actions).map { [$0.id, $0.nonce] } == [[2, 0], [3, 1]])
        #expect(lane.next == 2)
    }

    @Test func nonceTooLowResyncsAndRenumbersEverything() {
        var lane = NonceLane(next: 5)
        let requests = (1...3).map { id in Self.signing(lane.enqueue(UInt64(id), Self.transfer(UInt64(id))))[0] }
        for request in requests { _ = lane.signed(request.id, attempt: request.attempt, request.signed) }
        // Someone used nonce 5 (and 6) outside the gateway.
        #expect(lane.submitFailed(1, code: -32000, message: "nonce too low") == [.sync])
        let renumbered = lane.synced(nonce: 7)
        #expect(Self.signing(renumbered).map { [$0.id, $0.nonce] } == [[1, 7], [2, 8], [3, 9]])
        #expect(lane.next == 10)
        // No request failed: the clients never notice.
        #expect(!renumbered.contains { if case .failed = $0 { true } else { false } })
    }

    @Test func unknownSubmissionOutcomeResendsTheSameBytes() {
        var lane = NonceLane(next: 0)
        let request = Self.signing(lane.enqueue(1, Self.transfer(1)))[0]
        let first = lane.signed(1, attempt: request.attempt, request.signed)
        let again = lane.submissionUnknown(1)
        #expect(first == again)  // identical signed transaction: a node that has it says "already known"
    }

    @Test func syncFailureFailsOnlyWhatWaitsForANonce() {
        var lane = NonceLane()
        _ = lane.enqueue(1, Self.transfer(1))
        _ = lane.enqueue(2, Self.transfer(2))
        let actions = lane.syncFailed(.nodeUnavailable("node down"))
        #expect(actions == [.failed(1, .nodeUnavailable("node down")), .failed(2, .nodeUnavailable("node down"))])
        #expect(lane.enqueue(3, Self.transfer(3)) == [.sync])  // the next request tries again
    }

    @Test func randomInterleavingsNeverGapOrRepeat() {
        // Property: whatever the order of signatures, failures and node answers, the nonces the node accepts are
        // exactly start, start+1, … with no gap and no repeat.
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            var lane = NonceLane(next: 100)
            var inFlightSigns: [(id: UInt64, attempt: Int, signed: SignedTransaction)] = []
            var atNode: (id: UInt64, nonce: UInt64)? = nil
            var accepted: [UInt64] = []
            var nextID: UInt64 = 1
            func apply(_ actions: [NonceLane.Action]) {
                for action in actions {
                    switch action {
                    case .sign(let id, let transaction, let attempt): inFlightSigns.append((id, attempt, transaction.signed(with: Self.key)))
                    case .submit(let id, let signed): atNode = (id, signed.transaction.nonce)
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
                        apply(lane.signFailed(sign.id, attempt: sign.attempt, .rejected("x")))
                    } else {
                        apply(lane.signed(sign.id, attempt: sign.attempt, sign.signed))
                    }
                case 6..<10 where atNode != nil:
                    let (id, nonce) = atNode!
                    atNode = nil
                    if Int.random(in: 0..<8, using: &generator) == 0 {
                        apply(lane.submitFailed(id, code: -32000, message: "intrinsic gas too low"))
                    } else {
                        accepted.append(nonce)
                        apply(lane.submitted(id))
                    }
                default:
                    break
                }
            }
            #expect(accepted == Array(100..<(100 + UInt64(accepted.count))), "accepted nonces \(accepted)")
        }
    }
}
