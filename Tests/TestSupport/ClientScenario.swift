import Foundation

/// Runs one of the Python client scenarios (Tools/clients/scenarios, web3.py 8 and `websockets`) against a URL.
public enum ClientScenario {
    public struct Outcome: Sendable {
        public let exitCode: Int32
        /// The JSON after the scenario's final `RESULT ` line.
        public let result: [String: any Sendable]?
        public let diagnostics: String
    }

    /// Starts a scenario without waiting (for streaming scenarios such as watch_heads.py).
    public static func start(_ script: String, _ arguments: [String]) async throws -> ManagedProcess {
        let python = try await PythonTools.python(.clients)
        return try ManagedProcess(
            name: script, executable: python,
            arguments: [Repository.path("Tools/clients/scenarios/\(script)")] + arguments)
    }

    public static func run(
        _ script: String, _ arguments: [String], timeout: Duration = .seconds(120)
    ) async throws -> Outcome {
        let process = try await start(script, arguments)
        let exitCode = try await process.waitForExit(timeout: timeout)
        let resultLine = process.stdoutLines.last { $0.hasPrefix("RESULT ") }
        let result = resultLine.flatMap {
            try? JSONSerialization.jsonObject(with: Data($0.dropFirst("RESULT ".count).utf8)) as? [String: any Sendable]
        }
        return Outcome(exitCode: exitCode, result: result, diagnostics: process.diagnostics)
    }
}
