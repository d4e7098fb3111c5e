import ArgumentParser
import Foundation
import NIOCore
import NIOPosix

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Open --connections WebSockets, keep --depth requests in flight on each, for --seconds.")

    @Option(help: "ws://host:port/ of the server under test.") var url: String
    @Option(help: "Concurrent WebSocket connections.") var connections = 200
    @Option(help: "Requests kept in flight per connection (pipelining depth).") var depth = 4
    @Option(help: "Measured seconds (after --warmup).") var seconds = 10.0
    @Option(help: "Unmeasured seconds first.") var warmup = 2.0
    @Option(help: "JSON-RPC method to call.") var method = "eth_chainId"
    @Option(help: "JSON-RPC params (a JSON array).") var params = "[]"
    @Option(help: "Client event-loop threads.") var threads = 1
    @Flag(help: "Print one JSON line instead of text.") var json = false

    func run() async throws {
        guard let target = WebSocketTarget(url: url) else { throw ValidationError("--url must look like ws://host:port/") }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let recorder = Recorder()
        var clients: [LoadConnection] = []
        for index in 0..<connections {
            let client = LoadConnection(target: target, depth: depth, method: method, params: params,
                                        recorder: recorder, seed: index)
            try await client.connect(group: group)
            clients.append(client)
        }
        for client in clients { client.start() }
        try await Task.sleep(for: .seconds(warmup))
        recorder.startMeasuring()
        try await Task.sleep(for: .seconds(seconds))
        let report = recorder.stopMeasuring()
        for client in clients { client.stop() }
        try? await group.shutdownGracefully()
        let rate = Double(report.responses) / report.elapsed
        if json {
            let object: [String: Any] = [
                "url": url, "connections": connections, "depth": depth, "method": method, "seconds": report.elapsed,
                "responses": report.responses, "errors": report.errors, "requests_per_second": rate.rounded(),
                "latency_us": ["p50": report.percentile(0.5), "p90": report.percentile(0.9),
                               "p99": report.percentile(0.99), "max": report.percentile(1.0)],
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print("\(url) \(method): \(connections) connections × depth \(depth), \(String(format: "%.1f", report.elapsed)) s")
            print("  responses \(report.responses)  errors \(report.errors)  → \(Int(rate)) requests/s")
            print("  latency µs: p50 \(report.percentile(0.5))  p90 \(report.percentile(0.9))  p99 \(report.percentile(0.99))  max \(report.percentile(1.0))")
        }
        if report.responses == 0 { throw ExitCode.failure }
    }
}
