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
    @Option(help: "pid of the server under test: its CPU time during the measured window is reported per request.")
    var serverPid: Int32?

    func run() async throws {
        guard let target = WebSocketTarget(url: url) else {
            throw ValidationError("--url must look like ws://host:port/")
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let recorder = Recorder()
        var clients: [LoadConnection] = []
        for index in 0..<connections {
            let client = LoadConnection(
                target: target, depth: depth, method: method, params: params,
                recorder: recorder, seed: index)
            try await client.connect(group: group)
            clients.append(client)
        }
        for client in clients { client.start() }
        try await Task.sleep(for: .seconds(warmup))
        let cpuBefore = serverPid.flatMap(Self.cpuSeconds)
        recorder.startMeasuring()
        try await Task.sleep(for: .seconds(seconds))
        let report = recorder.stopMeasuring()
        let cpuAfter = serverPid.flatMap(Self.cpuSeconds)
        // On two cores the client saturates its core before the server does: server CPU per request is the fair
        // comparison between servers.
        let serverMicroseconds: Double? = cpuBefore.flatMap { before in
            cpuAfter.map { ($0 - before) * 1e6 / Double(max(report.responses, 1)) }
        }
        for client in clients { client.stop() }
        try? await group.shutdownGracefully()
        let rate = Double(report.responses) / report.elapsed
        if json {
            let object: [String: Any] = [
                "url": url, "connections": connections, "depth": depth, "method": method, "seconds": report.elapsed,
                "responses": report.responses, "errors": report.errors, "requests_per_second": rate.rounded(),
                "latency_us": [
                    "p50": report.percentile(0.5), "p90": report.percentile(0.9),
                    "p99": report.percentile(0.99), "max": report.percentile(1.0),
                ],
                "server_cpu_us_per_request": serverMicroseconds.map { ($0 * 100).rounded() / 100 } ?? NSNull(),
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(
                "\(url) \(method): \(connections) connections × depth \(depth), \(String(format: "%.1f", report.elapsed)) s"
            )
            print("  responses \(report.responses)  errors \(report.errors)  → \(Int(rate)) requests/s")
            print(
                "  latency µs: p50 \(report.percentile(0.5))  p90 \(report.percentile(0.9))  p99 \(report.percentile(0.99))  max \(report.percentile(1.0))"
            )
            if let serverMicroseconds {
                print("  server CPU per request: \(String(format: "%.2f", serverMicroseconds)) µs")
            }
        }
        if report.responses == 0 { throw ExitCode.failure }
    }
}

extension Run {
    /// utime + stime of a process, from /proc.
    static func cpuSeconds(pid: Int32) -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the command name: state is field 3, utime 14, stime 15 (1-based over the whole line).
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}
