import Foundation
import Gateway
import Logging
import NIOCore
import ServiceLifecycle
import Signers
import TestSupport

/// A gateway running in this test process on a free port, bound to a dev node.
struct LiveGateway: Sendable {
    let application: GatewayApplication
    let port: Int
    /// This gateway's log records.
    let logs: CapturingLogHandler
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    static func start(
        node: Devnode, backends: [any KeyBackend] = [],
        configure: (inout GatewayConfiguration) -> Void = { _ in }
    ) async throws -> LiveGateway {
        var configuration = GatewayConfiguration()
        configuration.server.port = 0
        configuration.journalPath = ":memory:"
        configuration.node.url = node.webSocketURL
        configuration.node.reconnectInitialMilliseconds = 50
        configuration.node.reconnectMaximumMilliseconds = 500
        configuration.access.anonymousRole = .user  // on loopback; access control has its own tests
        configure(&configuration)
        let logs = CapturingLogHandler()
        let logger = Logger(label: "gateway-test", factory: { _ in logs })
        let application = try GatewayApplication(configuration: configuration, logger: logger, backends: backends)
        let group = ServiceGroup(services: application.services, logger: logger)
        let task = Task { try await group.run() }
        let address = try await application.server.listeningAddress
        // Wait until the node link is up (so the first client call is not refused as "reconnecting") and the wallet
        // has its accounts.
        let expectsAccounts = !backends.isEmpty || !configuration.allBackends.isEmpty
        _ = await eventually(timeout: .seconds(20), every: .milliseconds(20)) {
            application.node.isConnected && (!expectsAccounts || !application.wallet.addresses.isEmpty)
        }
        return LiveGateway(application: application, port: address.port!, logs: logs, group: group, task: task)
    }

    var url: String { "ws://127.0.0.1:\(port)/" }
    var httpURL: String { "http://127.0.0.1:\(port)/" }

    func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await task.value
    }
}

/// Runs `body` with a live gateway and always stops it afterwards, whether `body` returns or throws.
func withLiveGateway<T: Sendable>(
    node: Devnode, backends: [any KeyBackend] = [], configure: (inout GatewayConfiguration) -> Void = { _ in },
    _ body: (LiveGateway) async throws -> T
) async throws -> T {
    let gateway = try await LiveGateway.start(node: node, backends: backends, configure: configure)
    do {
        let result = try await body(gateway)
        await gateway.stop()
        return result
    } catch {
        await gateway.stop()
        throw error
    }
}

/// Keeps log records in memory, so tests can read them (and so test output stays quiet). A value, as swift-log
/// expects of a handler: every logger made from it has its own metadata (a connection's logger sets its id), and
/// all of them share one record store.
struct CapturingLogHandler: LogHandler {
    private final class Store: @unchecked Sendable {
        let lock = NSLock()
        var records: [String] = []
    }

    private let store = Store()
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .debug

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        store.lock.lock()
        store.records.append("\(event.level) \(event.message) \(merged)")
        if store.records.count > 10_000 { store.records.removeFirst(5_000) }
        store.lock.unlock()
    }

    var lines: [String] {
        store.lock.lock()
        defer { store.lock.unlock() }
        return store.records
    }
}
