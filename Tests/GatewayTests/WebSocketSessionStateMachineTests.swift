import JSON
import JSONRPC
import Logging
import NIOCore
import NIOEmbedded
import NIOWebSocket
import Node
import Synchronization
import TestSupport
import Testing

@testable import Gateway

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

    /// The defect this machine fixed: a client at the in-flight limit is not read, so its pong cannot be seen, and
    /// the idle timer kept firing. Paused, there is no ping deadline; once reads resume, liveness starts afresh.
    @Test func noPingAndNoTimeoutWhileReadsArePaused() {
        var machine = Self.paused(limit: 64)
        for _ in 0..<5 { #expect(machine.idleTimerFired() == .none) }
        #expect(machine.responseCompleted() == .read)
        #expect(machine.idleTimerFired() == .ping)
        // A client that is really gone is still caught, one interval after the fresh ping.
        #expect(machine.idleTimerFired() == .close(.goingAway, .pingTimeout))
    }

    @Test func aPingSentBeforeThePauseIsForgottenWhenReadsResume() {
        var machine = Machine(maximumInFlight: 2)
        Self.burst(of: 2, into: &machine)
        #expect(machine.idleTimerFired() == .ping)  // the interval ended before NIO asked for the next read
        #expect(machine.readRequested() == .none)
        #expect(machine.idleTimerFired() == .none)
        #expect(machine.responseCompleted() == .read)
        #expect(machine.idleTimerFired() == .ping)  // not a timeout: the old ping could not have been answered
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

    /// While our close frame is on its way, what the client still sends is read but never run: its answer could not
    /// be delivered, and a retrying client would send the transaction twice.
    @Test func whileClosingRequestsAreNotRun() {
        var machine = Machine(maximumInFlight: 1)
        Self.burst(of: 1, into: &machine)
        #expect(machine.readRequested() == .none)
        #expect(machine.outboundLimitExceeded() == .close(.policyViolation, .outboundQueueFull))
        #expect(machine.responseCompleted() == .read)
        #expect(machine.frameReceived(.message(Self.payload)) == .none)
        #expect(machine.frameReady(Self.response, flush: false) == .none)
        #expect(machine.readBurstComplete() == .none)
        #expect(machine.inFlight == 0)
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
        // A request read while draining is not run: its answer could be lost with the connection, and a client
        // that retries would then send it twice. The close (1001) tells it to reconnect.
        #expect(machine.frameReceived(.message(Self.payload)) == .none)
        #expect(machine.readBurstComplete() == .none)
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
        var generator = SeededGenerator.forTest("WebSocketSessionStateMachine random events")
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
                    if case .ping = action { #expect(!paused, "ping while reads are paused") }
                case .read:
                    if paused { passedOn += 1 }
                    paused = false
                case .dispatch:
                    #expect(!draining && !closeSent, "a request run after \(event) while draining or closing")
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
                    let action = machine.idleTimerFired()
                    if paused { #expect(action == .none) }
                    apply(action, event: "idle")
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

// MARK: - The handler on an EmbeddedChannel

/// The session handler as GatewayServer installs it, on an `EmbeddedChannel`: frames in, frames and closes out.
/// The `IdleStateHandler` in front of it measures wall-clock time, which `EmbeddedEventLoop` cannot advance, so
/// these tests fire its event themselves, as it does after each ping interval in which it saw no frame.
@Suite struct WebSocketSessionHandlerTests {
    @Test func aPingIsAnsweredAndAPongKeepsTheConnection() throws {
        let session = try Session()
        try session.send(.ping, "hi")
        #expect(try session.sent() == [.pong("hi")])
        session.idle()
        #expect(try session.sent() == [.ping])
        try session.send(.pong, "")
        session.idle()
        #expect(try session.sent() == [.ping])
        #expect(session.channel.isActive)
    }

    @Test func anIdleClientIsPingedThenClosedWithoutAPong() throws {
        let session = try Session()
        session.idle()
        #expect(try session.sent() == [.ping])
        session.idle()
        #expect(try session.sent() == [.close(.goingAway, "ping timeout")])
        #expect(!session.channel.isActive)
        #expect(session.logs.lines.contains { $0.contains("did not answer ping") })
    }

    @Test func readsPauseAtTheInFlightLimitAndResume() throws {
        let session = try Session()
        let limit = ServerLimits().maximumInFlightPerConnection
        for id in 1..<limit { try session.request(id: id) }
        session.channel.read()
        #expect(session.probe.reads == 1)
        try session.request(id: limit)
        session.channel.read()
        #expect(session.probe.reads == 1)  // withheld: the limit is in flight
        session.node.answerOldest()
        #expect(try session.sent() == [.text(Session.response(id: 1))])
        #expect(session.probe.reads == 2)  // the withheld read goes on
        session.channel.read()
        #expect(session.probe.reads == 3)
        session.node.answerOldest()
        #expect(session.probe.reads == 3)  // nothing was withheld this time
    }

    /// The defect: a client at the in-flight limit is not read, so its pong cannot be seen; it used to be closed as
    /// dead after two idle intervals.
    @Test func noCloseWhileReadsArePausedByBackpressure() throws {
        let session = try Session()
        let limit = ServerLimits().maximumInFlightPerConnection
        for id in 1...limit { try session.request(id: id) }
        session.channel.read()
        for _ in 0..<4 { session.idle() }
        #expect(try session.sent() == [])
        #expect(session.channel.isActive)
        // Reads resume: the idle logic starts afresh, and still closes a client that is really gone.
        session.node.answerOldest()
        #expect(try session.sent() == [.text(Session.response(id: 1))])
        session.idle()
        #expect(try session.sent() == [.ping])
        session.idle()
        #expect(try session.sent() == [.close(.goingAway, "ping timeout")])
        #expect(!session.channel.isActive)
    }

    @Test func aClientCloseIsEchoedAndTheChannelCloses() throws {
        let session = try Session()
        var data = ByteBuffer()
        data.write(webSocketErrorCode: .unknown(4001))
        try session.channel.writeInbound(WebSocketFrame(fin: true, opcode: .connectionClose, data: data))
        #expect(try session.sent() == [.close(.unknown(4001), "")])
        #expect(!session.channel.isActive)
    }

    @Test func aCloseWithoutACodeIsAnsweredWithNormalClosure() throws {
        let session = try Session()
        try session.send(.connectionClose, "")
        #expect(try session.sent() == [.close(.normalClosure, "")])
        #expect(!session.channel.isActive)
    }

    @Test func aGracefulDrainFinishesWhatIsInFlightThenCloses1001() throws {
        let session = try Session()
        try session.request(id: 1)
        try session.request(id: 2)
        session.channel.pipeline.syncOperations.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(try session.sent() == [])
        #expect(session.channel.isActive)
        session.node.answerOldest()
        #expect(try session.sent() == [.text(Session.response(id: 1))])
        #expect(session.channel.isActive)
        session.node.answerOldest()
        #expect(try session.sent() == [.text(Session.response(id: 2)), .close(.goingAway, "server shutting down")])
        #expect(!session.channel.isActive)
    }

    @Test func aDrainWithNothingInFlightClosesAtOnce() throws {
        let session = try Session()
        session.channel.pipeline.syncOperations.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(try session.sent() == [.close(.goingAway, "server shutting down")])
        #expect(!session.channel.isActive)
    }

    @Test func aClientThatStopsReadingIsClosedWith1008() throws {
        var limits = ServerLimits()
        limits.maximumOutboundBytes = 16
        let session = try Session(limits: limits)
        // While the channel is writable the limit is not even looked at.
        try session.request(id: 1)
        session.node.answerOldest()
        #expect(try session.sent() == [.text(Session.response(id: 1))])
        // Unwritable (above the high-water mark): a response that would pass the limit closes instead.
        try session.request(id: 2)
        session.channel.isWritable = false
        session.node.answerOldest()
        #expect(try session.sent() == [.close(.policyViolation, "client too slow: outbound queue full")])
        #expect(!session.channel.isActive)
        #expect(session.logs.lines.contains { $0.contains("client is not reading") })
    }

    @Test func aPipelinedBurstIsFlushedOnceAtItsEnd() throws {
        let session = try Session()
        for id in 1...3 {
            session.channel.pipeline.syncOperations.fireChannelRead(NIOAny(Session.requestFrame(id: id)))
            session.node.answerOldest()
        }
        #expect(try session.sent() == [])  // written, not yet flushed
        session.channel.pipeline.syncOperations.fireChannelReadComplete()
        #expect(try session.sent() == (1...3).map { .text(Session.response(id: $0)) })
        #expect(session.probe.flushes == 1)
    }

    @Test func aMalformedMessageIsAnsweredAndDoesNotCountInFlight() throws {
        let session = try Session()
        try session.send(.text, "{")
        let sent = try session.sent()
        #expect(sent.count == 1)
        if case .text(let text) = sent.first { #expect(text.contains("-32700")) } else { Issue.record("\(sent)") }
        for id in 1..<ServerLimits().maximumInFlightPerConnection { try session.request(id: id) }
        session.channel.read()
        #expect(session.probe.reads == 1)
    }
}

// MARK: - Test doubles

/// A node that answers only when the test says so, so that requests stay in flight.
final class HeldNode: NodeClient {
    private let calls = Mutex<[@Sendable (Result<JSONValue, NodeError>) -> Void]>([])

    func call(
        method: String, params: JSONValue,
        completion: @escaping @Sendable (Result<JSONValue, NodeError>) -> Void
    ) {
        calls.withLock { $0.append(completion) }
    }

    func setEventHandler(_ handler: @escaping @Sendable (NodeEvent) -> Void) {}

    /// Answers the oldest call still held, with "0x1".
    func answerOldest() {
        let completion = calls.withLock { $0.removeFirst() }
        completion(.success("0x1"))
    }
}

/// Counts the reads and flushes that the session handler passes on towards the socket.
final class OutboundProbe: ChannelOutboundHandler {
    typealias OutboundIn = NIOAny
    private(set) var reads = 0
    private(set) var flushes = 0

    func read(context: ChannelHandlerContext) {
        reads += 1
        context.read()
    }

    func flush(context: ChannelHandlerContext) {
        flushes += 1
        context.flush()
    }
}

/// One session handler on an active `EmbeddedChannel`, with its node and a probe in front of it.
final class Session {
    enum Sent: Equatable {
        case text(String)
        case ping
        case pong(String)
        case close(WebSocketErrorCode, String)
    }

    let channel = EmbeddedChannel()
    let node = HeldNode()
    let probe = OutboundProbe()
    let logs = CapturingLogHandler()

    init(limits: ServerLimits = ServerLimits()) throws {
        let logs = self.logs
        let handler = WebSocketSessionHandler(
            dispatcher: RPCDispatcher(node: node, methods: []), limits: limits, rpcLimits: RPCLimits(),
            logger: Logger(label: "test", factory: { _ in logs }))
        try channel.pipeline.syncOperations.addHandlers([probe, handler])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8545)).wait()
    }

    deinit {
        // Cancels the write-timeout task a close leaves scheduled; EmbeddedEventLoop insists.
        _ = try? channel.finish(acceptAlreadyClosed: true)
    }

    static func requestFrame(id: Int) -> WebSocketFrame {
        let text = #"{"jsonrpc":"2.0","id":\#(id),"method":"eth_blockNumber","params":[]}"#
        return WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: text))
    }

    static func response(id: Int) -> String {
        #"{"jsonrpc":"2.0","id":\#(id),"result":"0x1"}"#
    }

    /// One frame from the client, as its own read burst.
    func send(_ opcode: WebSocketOpcode, _ text: String) throws {
        try channel.writeInbound(WebSocketFrame(fin: true, opcode: opcode, data: ByteBuffer(string: text)))
    }

    func request(id: Int) throws {
        try channel.writeInbound(Self.requestFrame(id: id))
    }

    /// What `IdleStateHandler(readTimeout:)` fires after a ping interval without a frame.
    func idle() {
        channel.pipeline.syncOperations.fireUserInboundEventTriggered(IdleStateHandler.IdleStateEvent.read)
    }

    /// The frames flushed to the client since the last call.
    func sent() throws -> [Sent] {
        var frames: [Sent] = []
        while let frame = try channel.readOutbound(as: WebSocketFrame.self) {
            var data = frame.data
            switch frame.opcode {
            case .text: frames.append(.text(data.readString(length: data.readableBytes) ?? ""))
            case .ping: frames.append(.ping)
            case .pong: frames.append(.pong(data.readString(length: data.readableBytes) ?? ""))
            case .connectionClose:
                let code = data.readWebSocketErrorCode() ?? .unknown(0)
                frames.append(.close(code, data.readString(length: data.readableBytes) ?? ""))
            default: Issue.record("unexpected frame \(frame)")
            }
        }
        return frames
    }
}
