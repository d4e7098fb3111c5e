import NIOCore
import NIOWebSocket

/// One client WebSocket connection as a value: `WebSocketSessionHandler` reports each event and performs the
/// `Action` it gets back. No channel, no I/O, no clock: it is tested as a value (WebSocketSessionStateMachineTests).
///
/// A connection is in four states at once, each a small enum because they change independently:
/// - its **phase**: `open` → `draining` (graceful shutdown: finish what is in flight, then close 1001) → `closing`
///   (our close frame is on its way; nothing more is sent) → `closed` (the channel is gone);
/// - its **reading**: `flowing`, or `paused` while `maximumInFlight` requests are in flight (backpressure: the read
///   NIO asks for is withheld until a response completes);
/// - its **liveness**, while reading flows: a ping is outstanding or not. The `IdleStateHandler` in front of the
///   session (GatewayServer) fires every ping interval in which it saw no frame; the first such event pings, the next
///   one closes (1001);
/// - its **read burst**: inside one (between channelRead and channelReadComplete) response flushes wait for the end of
///   the burst, one syscall for all the responses of a pipelined burst; outside one each write is flushed at once.
///
/// Why a paused connection has no ping deadline: the `IdleStateHandler` only sees frames that are read, so while the
/// gateway itself withholds reads it keeps firing although the client may be answering; its pong sits unread in the
/// socket. Its events are ignored while paused, and a resume starts liveness afresh: the next event sends a new
/// ping, and the client has a full interval, counted while it can be read, to show it is alive.
///
/// Invariants (each tested):
/// - at most one close frame is sent, and nothing is sent after it;
/// - no ping is sent, and no ping timeout closes the connection, while reads are paused;
/// - a withheld read is passed on exactly once, when the in-flight count drops below the limit;
/// - a draining connection closes when, and only when, nothing is in flight;
/// - only an open session runs requests: none read while draining or closing is dispatched (its answer could be
///   lost, and a client that retries would then send a transaction twice).
struct WebSocketSessionStateMachine: Sendable {
    enum Action: Sendable, Equatable {
        /// Nothing to do.
        case none
        /// Decode the message and hand it to the dispatcher; report its end with `responseCompleted()`.
        case dispatch(ByteBuffer)
        /// Write a text frame with these bytes; flush now, or leave it for the flush that ends the read burst.
        case write([UInt8], flush: Bool)
        /// Flush what the read burst wrote.
        case flush
        /// Pass a read on towards the socket (NIO's request, or the one withheld while paused).
        case read
        /// Answer a ping with a pong carrying its payload.
        case pong(ByteBuffer)
        /// Send an empty ping.
        case ping
        /// Send a close frame, then close the channel once it is written (or after the write timeout, for a client
        /// that no longer reads).
        case close(WebSocketErrorCode, CloseReason?)
    }

    /// The reason text of the close frames the gateway starts.
    enum CloseReason: String, Sendable {
        case shuttingDown = "server shutting down"
        case pingTimeout = "ping timeout"
        case outboundQueueFull = "client too slow: outbound queue full"
        case messageTooLarge = "message too large"
    }

    /// A frame from the client, as far as the session cares.
    enum InboundFrame: Sendable, Equatable {
        /// A text or binary frame: one JSON-RPC message.
        case message(ByteBuffer)
        case ping(ByteBuffer)
        case pong
        /// The client's close frame, with its code (1000 when it gave none).
        case close(WebSocketErrorCode)
        /// Anything else (unknown opcodes; fragments are reassembled before the session).
        case other
    }

    private enum Phase: Sendable, Equatable {
        case open
        case draining
        case closing
        case closed
    }

    private enum Reading: Sendable, Equatable {
        /// Frames are read as they come. `pingSent`: an idle interval passed without a frame and a ping went out.
        case flowing(pingSent: Bool)
        /// NIO asked for a read and it is withheld until a response completes. No ping deadline while here.
        case paused
    }

    private enum ReadBurst: Sendable, Equatable {
        case outside
        case inside(flushPending: Bool)
    }

    private let maximumInFlight: Int
    private var phase = Phase.open
    private var reading = Reading.flowing(pingSent: false)
    private var burst = ReadBurst.outside
    /// Requests (or batches) dispatched whose response is not written yet.
    private(set) var inFlight = 0

    init(maximumInFlight: Int) {
        self.maximumInFlight = maximumInFlight
    }

    /// Whether frames may still go out: false once our close frame is on its way or the channel is gone.
    private var canSend: Bool { phase == .open || phase == .draining }

    // MARK: Inbound events

    /// A frame arrived (inside a read burst). Any frame shows the client is alive.
    mutating func frameReceived(_ frame: InboundFrame) -> Action {
        if case .flowing = reading { reading = .flowing(pingSent: false) }
        if case .outside = burst { burst = .inside(flushPending: false) }
        switch frame {
        case .message(let payload):
            // Only an open session runs requests. One read after our close frame (or while draining) would run
            // with its answer dropped: an `eth_sendTransaction` executed without a reply, which a client that
            // retries would send twice. Unread, nothing happened; the close tells the client to reconnect.
            guard phase == .open else { return .none }
            inFlight += 1
            return .dispatch(payload)
        case .ping(let payload):
            return canSend ? .pong(payload) : .none
        case .pong, .other:
            return .none
        case .close(let code):
            // Echo the client's code, as RFC 6455 §5.5.1 asks.
            return startClosing(code, nil)
        }
    }

    /// NIO's channelReadComplete: the burst is over; what it wrote goes out in one flush.
    mutating func readBurstComplete() -> Action {
        defer { burst = .outside }
        if case .inside(flushPending: true) = burst { return .flush }
        return .none
    }

    /// NIO asks for more data. Withheld while the connection has as many requests in flight as it may:
    /// backpressure, not an error.
    mutating func readRequested() -> Action {
        guard inFlight >= maximumInFlight else { return .read }
        reading = .paused
        return .none
    }

    /// A dispatched message is done (its response, if any, has been handed to `frameReady` first).
    mutating func responseCompleted() -> Action {
        // The dispatcher completes each message exactly once; a second completion must not take the server down.
        guard inFlight > 0 else {
            assertionFailure("a response completed that was never dispatched")
            return .none
        }
        inFlight -= 1
        switch phase {
        case .draining where inFlight == 0:
            return startClosing(.goingAway, .shuttingDown)
        case .closed:
            return .none
        case .open, .draining, .closing:
            break
        }
        guard reading == .paused, inFlight < maximumInFlight else { return .none }
        // Liveness restarts with reading: a ping sent before the pause is forgotten.
        reading = .flowing(pingSent: false)
        return .read
    }

    /// The `IdleStateHandler` saw no frame for a ping interval.
    mutating func idleTimerFired() -> Action {
        guard canSend else { return .none }
        switch reading {
        case .paused:
            // We are the ones not reading: the client's pong could not be seen, so there is nothing to time out.
            return .none
        case .flowing(pingSent: false):
            reading = .flowing(pingSent: true)
            return .ping
        case .flowing(pingSent: true):
            return startClosing(.goingAway, .pingTimeout)
        }
    }

    /// Graceful shutdown (`ChannelShouldQuiesceEvent`): finish what is in flight, then close with 1001.
    mutating func quiesceRequested() -> Action {
        guard canSend else { return .none }
        phase = .draining
        return inFlight == 0 ? startClosing(.goingAway, .shuttingDown) : .none
    }

    /// The pipeline reported an error: an oversized message (1009) or a protocol violation (1002).
    mutating func errorCaught(messageTooLarge: Bool) -> Action {
        messageTooLarge ? startClosing(.messageTooLarge, .messageTooLarge) : startClosing(.protocolError, nil)
    }

    /// The connection is gone: nothing is sent or dispatched any more.
    mutating func channelInactive() {
        phase = .closed
    }

    // MARK: Outbound events

    /// A response or notification is ready. `flush`: send it now even inside a read burst (notifications, which
    /// must not wait behind a burst of requests).
    mutating func frameReady(_ bytes: [UInt8], flush: Bool) -> Action {
        guard canSend else { return .none }
        switch burst {
        case .outside:
            return .write(bytes, flush: true)
        case .inside:
            if !flush { burst = .inside(flushPending: true) }
            return .write(bytes, flush: flush)
        }
    }

    /// Writing the next frame would take the unsent bytes past `maximumOutboundBytes` while the channel is
    /// unwritable: the client is not reading, so it is disconnected (1008) before its queue can grow memory.
    mutating func outboundLimitExceeded() -> Action {
        startClosing(.policyViolation, .outboundQueueFull)
    }

    // MARK: Helpers

    private mutating func startClosing(_ code: WebSocketErrorCode, _ reason: CloseReason?) -> Action {
        guard canSend else { return .none }
        phase = .closing
        return .close(code, reason)
    }
}
