/// The connection a request came in on, as method handlers see it.
public struct SessionContext: Sendable {
    public enum Transport: String, Sendable { case http, webSocket }

    public let connectionID: UInt64
    public let transport: Transport
    /// Where subscription notifications go; `nil` over HTTP, which cannot carry them.
    public let sink: (any SubscriptionSink)?
    /// Who is calling (the dispatcher's policy decides on it).
    public let identity: Identity

    public init(
        connectionID: UInt64, transport: Transport, sink: (any SubscriptionSink)?,
        identity: Identity = .anonymous
    ) {
        self.connectionID = connectionID
        self.transport = transport
        self.sink = sink
        self.identity = identity
    }
}
