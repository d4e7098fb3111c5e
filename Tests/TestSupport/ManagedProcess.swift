import Foundation

/// A child process a test started: its output collected line by line, and killed by pid when the test is done
/// (never by name: other processes on a shared machine are not ours).
public final class ManagedProcess: Sendable {
    public let name: String
    private let process: Process
    private let output = OutputBuffer()

    public init(
        name: String, executable: String, arguments: [String], environment: [String: String] = [:],
        workingDirectory: String? = nil
    ) throws {
        self.name = name
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        if let workingDirectory { process.currentDirectoryURL = URL(fileURLWithPath: workingDirectory) }
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        process.standardInput = FileHandle.nullDevice
        self.process = process
        collect(stdout, stream: "stdout")
        collect(stderr, stream: "stderr")
        try process.run()
    }

    private func collect(_ pipe: Pipe, stream: String) {
        pipe.fileHandleForReading.readabilityHandler = { [output] handle in
            let data = handle.availableData
            if data.isEmpty {
                handle.readabilityHandler = nil
                output.withLock { output in
                    if let rest = output.partial[stream], !rest.isEmpty {
                        if stream == "stdout" { output.stdout.append(rest) } else { output.stderr.append(rest) }
                    }
                    output.partial[stream] = nil
                    output.ended.insert(stream)
                }
                return
            }
            let text = String(decoding: data, as: UTF8.self)
            output.withLock { output in
                var buffer = (output.partial[stream] ?? "") + text
                var lines: [String] = []
                while let newline = buffer.firstIndex(of: "\n") {
                    lines.append(String(buffer[..<newline]))
                    buffer = String(buffer[buffer.index(after: newline)...])
                }
                output.partial[stream] = buffer
                if stream == "stdout" { output.stdout += lines } else { output.stderr += lines }
            }
        }
    }

    public var pid: Int32 { process.processIdentifier }
    public var isRunning: Bool { process.isRunning }
    public var exitCode: Int32? { process.isRunning ? nil : process.terminationStatus }
    public var stdoutLines: [String] { output.withLock { $0.stdout } }
    public var stderrLines: [String] { output.withLock { $0.stderr } }

    /// Waits until a stdout line satisfies `predicate`; fails if the process exits or time runs out first.
    public func waitForLine(timeout: Duration = .seconds(30), where predicate: (String) -> Bool) async throws -> String
    {
        let deadline = ContinuousClock.now + timeout
        var seen = 0
        while ContinuousClock.now < deadline {
            let lines = stdoutLines
            for line in lines[seen...] where predicate(line) { return line }
            seen = lines.count
            if !process.isRunning {
                try await Task.sleep(for: .milliseconds(100))  // let the last output arrive
                if let line = stdoutLines.first(where: predicate) { return line }
                throw TestSupportError(
                    "\(name) exited (\(process.terminationStatus)) before the expected output.\n" + diagnostics)
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw TestSupportError("\(name): timed out waiting for output.\n" + diagnostics)
    }

    /// Waits for the process to exit by itself.
    public func waitForExit(timeout: Duration = .seconds(120)) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            guard ContinuousClock.now < deadline else {
                stop()
                throw TestSupportError("\(name) did not finish within \(timeout).\n" + diagnostics)
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        // The pipes may still hold the last output: wait for both to reach end of file (bounded, in case a
        // grandchild holds them open).
        let drained = ContinuousClock.now + .seconds(5)
        while output.withLock({ $0.ended.count }) < 2 && ContinuousClock.now < drained {
            try await Task.sleep(for: .milliseconds(10))
        }
        return process.terminationStatus
    }

    /// Runs a command to its end and returns its stdout lines; a non-zero exit is an error carrying its output.
    public static func output(
        name: String, executable: String, arguments: [String], environment: [String: String] = [:],
        timeout: Duration = .seconds(60)
    ) async throws -> [String] {
        let process = try ManagedProcess(
            name: name, executable: executable, arguments: arguments, environment: environment)
        let status = try await process.waitForExit(timeout: timeout)
        guard status == 0 else { throw TestSupportError("\(name) failed (\(status)).\n" + process.diagnostics) }
        return process.stdoutLines
    }

    /// SIGTERM now, SIGKILL if it has not exited within `grace`; returns at once (for `defer` and `deinit`). The
    /// escalation waits on a Dispatch thread, never on the cooperative pool: a blocked pool thread stalls every test.
    /// Never `waitUntilExit()`: on Linux it spins a run loop, for ever if the child is never reaped.
    public func stop(grace: Duration = .seconds(5)) {
        guard process.isRunning else { return }
        kill(pid, SIGTERM)
        let pid = pid
        DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(Int(grace.components.seconds * 1000))) {
            [process] in
            if process.isRunning { kill(pid, SIGKILL) }
        }
    }

    /// SIGTERM, then SIGKILL after `grace`, and returns once the process is gone (before reusing its port or files).
    public func stopAndWait(grace: Duration = .seconds(5)) async {
        guard process.isRunning else { return }
        kill(pid, SIGTERM)
        var deadline = ContinuousClock.now + grace
        while process.isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        guard process.isRunning else { return }
        kill(pid, SIGKILL)
        deadline = ContinuousClock.now + .seconds(5)
        while process.isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
    }

    /// The last lines of both streams, for failure messages.
    public var diagnostics: String {
        let out = stdoutLines.suffix(15).joined(separator: "\n")
        let err = stderrLines.suffix(25).joined(separator: "\n")
        return "--- \(name) stdout (tail)\n\(out)\n--- \(name) stderr (tail)\n\(err)"
    }

    deinit { stop(grace: .seconds(2)) }
}

/// Lines collected from a child's pipes (written by the pipe handlers, read by the test).
private final class OutputBuffer: @unchecked Sendable {
    private let lock = NSLock()
    typealias State = (stdout: [String], stderr: [String], partial: [String: String], ended: Set<String>)
    private var state: State = ([], [], [:], [])

    func withLock<R>(_ body: (inout State) -> R) -> R {
        lock.lock()
        defer { lock.unlock() }
        return body(&state)
    }
}
