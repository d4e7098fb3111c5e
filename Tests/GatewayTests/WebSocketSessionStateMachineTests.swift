@testable import Gateway
import NIOCore
import NIOWebSocket
import Testing

/// The session state machine as a value: events in, actions out, no channel.
@Suite struct WebSocketSessionStateMachineTests {
    typealias Machine = WebSocketSessionStateMachine
    static let payload = ByteBuffer(string: #"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}"#)
    static let response: [UInt8] = Array(#"{"jsonrpc":"2.0","id":1,"result":"0x1"}"#.utf8)

    /// A read burst of `count` messages, each dispatched, as NIO delivers a pipelined burst.
    static func burst(of count: Int, into machine: inout Machine) {
        for _ in 0..<count { #expect(machine.frameReceived(.message(payload)) == .dispatch(payload)) }
        #expect(machine.readBurstComplete() == .none)
    }

    /// A machine whose reads are paused: `limit` requests in flight and NIO's read withheld.
    static func paused(limit: Int) -> Machine {
        var machine = Machine(maximumInFlight: limit)
        burst(of: limit, into: &machine)
        #expect(machine.readRequested() == .none)
        return machine
    }

    // MARK: Messages and backpressure

    @Test func messagesAreDispatchedAndCountedUntilTheirResponse() {
        var machine = Machine(maximumInFlight: 64)
        #expect(machine.frameReceived(.message(Self.payload)) == .dispatch(Self.payload))
        #expect(machine.inFlight == 1)
        #expect(machine.frameReady(Self.response, flush: false) == .write(Self.response, flush: false))
        #expect(machine.responseCompleted() == .none)
        #expect(machine.inFlight == 0)
        #expect(machine.readBurstComplete() == .flush)
    }

    @Test func readsPassBelowTheInFlightLimit() {
        var machine = Machine(maximumInFlight: 3)
        Self.burst(of: 2, into: &machine)
        #expect(machine.readRequested() == .read)
    }

    @Test func readsPauseAtTheLimitAndTheWithheldReadIsPassedOnOnce() {
        var machine = Self.paused(limit: 3)
        #expect(machine.readRequested() == .none)  // NIO asking again changes nothing
        #expect(machine.responseCompleted() == .read)
        #expect(machine.responseCompleted() == .none)  // reads already flow
        #expect(machine.readRequested() == .read)
        #expect(machine.inFlight == 1)
    }

    @Test func aMalformedMessageIsCountedAndDoneAtOnce() {
        // The handler answers a message that does not decode with an error and reports it complete.
        var machine = Machine(maximumInFlight: 1)
        #expect(machine.frameReceived(.message(ByteBuffer(string: "{"))) == .dispatch(ByteBuffer(string: "{")))
        #expect(machine.frameReady(Self.response, flush: false) == .write(Self.response, flush: false))
        #expect(machine.responseCompleted() == .none)
        #expect(machine.readBurstComplete() == .flush)
        #expect(machine.readRequested() == .read)
    }

    // MARK: Liveness

    @Test func anIdleIntervalPingsAndASecondOneCloses() {
        var machine = Machine(maximumInFlight: 64)
        #expect(machine.idleTimerFired() == .ping)
        #expect(machine.idleTimerFired() == .close(.goingAway, .pingTimeout))
        #expect(machine.idleTimerFired() == .none)
    }

    @Test(arguments: [
        Machine.InboundFrame.pong, .other, .ping(ByteBuffer(string: "x")),
        .message(WebSocketSessionStateMachineTests.payload),
    ])
    func anyFrameShowsTheClientAlive(frame: Machine.InboundFrame) {
        var machine = Machine(maximumInFlight: 64)
        #expect(machine.idleTimerFired() == .ping)
        _ = machine.frameReceived(frame)
        _ = machine.readBurstComplete()
        #expect(machine.idleTimerFired() == .ping)  // a new ping, not a timeout
    }

    @Test func aPingIsAnsweredWithItsPayload() {
        var machine = Machine(maximumInFlight: 64)
        #expect(machine.frameReceived(.ping(ByteBuffer(string: "hi"))) == .pong(ByteBuffer(string: "hi")))
        #expect(machine.frameReceived(.pong) == .none)
        #expect(machine.frameReceived(.other) == .none)
    }

    @Test func pingsContinueWhileRequestsAreInFlightBelowTheLimit() {
        var machine = Machine(maximumInFlight: 64)
        Self.burst(of: 63, into: &machine)
        #expect(machine.readRequested() == .read)
        #expect(machine.idleTimerFired() == .ping)
        #expect(machine.idleTimerFired() == .close(.goingAway, .pingTimeout))
    }

    // MARK: Closing

    @Test(arguments: [WebSocketErrorCode.normalClosure, .goingAway, .unknown(4000)])
    func aClientCloseIsEchoedAndNothingIsSentAfter(code: WebSocketErrorCode) {
        var machine = Machine(maximumInFlight: 64)
        #expect(machine.frameReceived(.close(code)) == .close(code, nil))
        #expect(machine.frameReceived(.close(code)) == .none)
        #expect(machine.frameReceived(.ping(ByteBuffer(string: "x"))) == .none)
        #expect(machine.frameReady(Self.response, flush: true) == .none)
        #expect(machine.idleTimerFired() == .none)
        #expect(machine.quiesceRequested() == .none)
        #expect(machine.outboundLimitExceeded() == .none)
        #expect(machine.errorCaught(messageTooLarge: false) == .none)
    }

    /// Kept from the handler before the machine: while our close frame is on its way, what the client still sends is
    /// dispatched (and its reads resume), but nothing is answered.
    @Test func whileClosingRequestsAreStillDispatchedButNeverAnswered() {
        var machine = Machine(maximumInFlight: 1)
        Self.burst(of: 1, into: &machine)
        #expect(machine.readRequested() == .none)
        #expect(machine.outboundLimitExceeded() == .close(.policyViolation, .outboundQueueFull))
        #expect(machine.responseCompleted() == .read)
        #expect(machine.frameReceived(.message(Self.payload)) == .dispatch(Self.payload))
        #expect(machine.frameReady(Self.response, flush: false) == .none)
        #expect(machine.responseCompleted() == .none)
        #expect(machine.readBurstComplete() == .none)
    }

    @Test func aDrainWithNothingInFlightClosesAtOnce() {
        var machine = Machine(maximumInFlight: 64)
        #expect(machine.quiesceRequested() == .close(.goingAway, .shuttingDown))
        #expect(machine.quiesceRequested() == .none)
    }

    @Test func aDrainFinishesWhatIsInFlightThenCloses() {
        var machine = Machine(maximumInFlight: 64)
        Self.burst(of: 2, into: &machine)
        #expect(machine.quiesceRequested() == .none)
        #expect(machine.quiesceRequested() == .none)
        #expect(machine.frameReady(Self.response, flush: false) == .write(Self.response, flush: true))
        #expect(machine.responseCompleted() == .none)
        // A request read while draining is still served (as before the machine) and delays the close.
        #expect(machine.frameReceived(.message(Self.payload)) == .dispatch(Self.payload))
        #expect(machine.readBurstComplete() == .none)
        #expect(machine.responseCompleted() == .none)
        #expect(machine.frameReady(Self.response, flush: false) == .write(Self.response, flush: true))
        #expect(machine.responseCompleted() == .close(.goingAway, .shuttingDown))
        #expect(machine.idleTimerFired() == .none)
    }

    @Test func aDrainingConnectionStillResumesReadsBelowTheLimit() {
        var machine = Self.paused(limit: 2)
        #expect(machine.quiesceRequested() == .none)
        #expect(machine.responseCompleted() == .read)
        #expect(machine.responseCompleted() == .close(.goingAway, .shuttingDown))
    }

    @Test func theOutboundLimitClosesWithPolicyViolation() {
        var machine = Machine(maximumInFlight: 64)
        #expect(machine.outboundLimitExceeded() == .close(.policyViolation, .outboundQueueFull))
        #expect(machine.frameReady(Self.response, flush: true) == .none)
        #expect(machine.outboundLimitExceeded() == .none)
    }

    @Test func pipelineErrorsClose() {
        var tooLarge = Machine(maximumInFlight: 64)
        #expect(tooLarge.errorCaught(messageTooLarge: true) == .close(.messageTooLarge, .messageTooLarge))
        var broken = Machine(maximumInFlight: 64)
        #expect(broken.errorCaught(messageTooLarge: false) == .close(.protocolError, nil))
        #expect(broken.errorCaught(messageTooLarge: true) == .none)
    }

    @Test func nothingHappensOnceTheChannelIsGone() {
        var machine = Self.paused(limit: 2)
        machine.channelInactive()
        #expect(machine.responseCompleted() == .none)  // late answers from the node are dropped
        #expect(machine.frameReceived(.message(Self.payload)) == .none)
        #expect(machine.frameReady(Self.response, flush: true) == .none)
        #expect(machine.idleTimerFired() == .none)
        #expect(machine.quiesceRequested() == .none)
        #expect(machine.outboundLimitExceeded() == .none)
        #expect(machine.frameReceived(.close(.normalClosure)) == .none)
    }

    // MARK: Flushing

    @Test func writesInsideAReadBurstWaitForOneFlushAtItsEnd() {
        var machine = Machine(maximumInFlight: 64)
        #expect(machine.frameReady(Self.response, flush: false) == .write(Self.response, flush: true))  // outside
        _ = machine.frameReceived(.message(Self.payload))
        _ = machine.frameReceived(.message(Self.payload))
        #expect(machine.frameReady(Self.response, flush: false) == .write(Self.response, flush: false))
        #expect(machine.frameReady(Self.response, flush: false) == .write(Self.response, flush: false))
        #expect(machine.readBurstComplete() == .flush)
        #expect(machine.readBurstComplete() == .none)
    }

    @Test func notificationsAreFlushedAtOnceEvenInsideABurst() {
        var machine = Machine(maximumInFlight: 64)
        _ = machine.frameReceived(.pong)
        #expect(machine.frameReady(Self.response, flush: true) == .write(Self.response, flush: true))
        #expect(machine.readBurstComplete() == .none)
    }

    // MARK: Invariants under any order of events

    @Test func randomEventsKeepTheInvariants() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            let limit = Int.random(in: 1...4, using: &generator)
            var machine = Machine(maximumInFlight: limit)
            var inFlight = 0
            var paused = false
            var draining = false
            var closeSent = false
            var withheldReads = 0
            var passedOn = 0
            func apply(_ action: Machine.Action, event: String) {
                switch action {
                case .close:
                    #expect(!closeSent, "second close frame after \(event)")
                    closeSent = true
                case .ping, .pong, .write:
                    #expect(!closeSent, "\(action) after the close frame")
                case .read:
                    if paused { passedOn += 1 }
                    paused = false
                case .dispatch:
                    inFlight += 1
                case .none, .flush:
                    break
                }
            }
            for _ in 0..<80 {
                switch Int.random(in: 0..<9, using: &generator) {
                case 0, 1:
                    let frames: [Machine.InboundFrame] = [.message(Self.payload), .ping(Self.payload), .pong, .other]
                    let frame = frames.randomElement(using: &generator)!
                    apply(machine.frameReceived(frame), event: "frame")
                case 2:
                    apply(machine.readBurstComplete(), event: "burst end")
                case 3:
                    let action = machine.readRequested()
                    if action == .none {
                        #expect(inFlight >= limit)
                        if !paused { withheldReads += 1 }
                        paused = true
                    } else {
                        #expect(action == .read)
                    }
                case 4 where inFlight > 0:
                    inFlight -= 1
                    let action = machine.responseCompleted()
                    if !closeSent && draining && inFlight == 0 {
                        #expect(action == .close(.goingAway, .shuttingDown))
                    } else if paused && inFlight < limit {
                        #expect(action == .read)
                    }
                    apply(action, event: "completion")
                case 5:
                    apply(machine.idleTimerFired(), event: "idle")
                case 6:
                    apply(machine.frameReady(Self.response, flush: Bool.random(using: &generator)), event: "write")
                case 7:
                    let action = machine.quiesceRequested()
                    if !closeSent {
                        draining = true
                        #expect(action == (inFlight == 0 ? .close(.goingAway, .shuttingDown) : .none))
                    }
                    apply(action, event: "quiesce")
                case 8 where Int.random(in: 0..<10, using: &generator) == 0:
                    switch Int.random(in: 0..<3, using: &generator) {
                    case 0: apply(machine.outboundLimitExceeded(), event: "outbound limit")
                    case 1: apply(machine.frameReceived(.close(.normalClosure)), event: "client close")
                    default: apply(machine.errorCaught(messageTooLarge: false), event: "error")
                    }
                default:
                    break
                }
                #expect(machine.inFlight == inFlight)
            }
            #expect(passedOn <= withheldReads)
        }
    }
}
