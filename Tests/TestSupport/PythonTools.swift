import Foundation
import Synchronization

/// The Python test servers and clients under Tools/, each in its own virtualenv. `swift test` works on its own:
/// a missing virtualenv is created once per test process by the tool's idempotent install script.
public enum PythonTools {
    public enum Tool: String, Sendable {
        case devnode = "Tools/devnode"
        case clients = "Tools/clients"
        case kms = "Tools/kms"
        case azure = "Tools/azure"
        case vault = "Tools/vault"
    }

    /// One install per tool and test process; every other caller awaits the same one. Nothing here blocks a thread:
    /// the cooperative pool has as many threads as cores (two in CI), and a test that blocked one in a wait stalled
    /// every other test of the run for as long (30 s in one CI run, which timed a unit test out).
    private static let installs = Mutex<[String: Task<String, any Error>]>([:])

    public static func python(_ tool: Tool) async throws -> String {
        let install = installs.withLock { installs in
            if let running = installs[tool.rawValue] { return running }
            let task = Task { try await runInstall(tool) }
            installs[tool.rawValue] = task
            return task
        }
        return try await install.value
    }

    private static func runInstall(_ tool: Tool) async throws -> String {
        let python = Repository.path("\(tool.rawValue)/.venv/bin/python")
        let install = try ManagedProcess(
            name: "\(tool.rawValue)/install.sh", executable: Repository.path("\(tool.rawValue)/install.sh"),
            arguments: [])
        let status = try await install.waitForExit(timeout: .seconds(600))
        guard status == 0, FileManager.default.fileExists(atPath: python) else {
            throw TestSupportError(
                "\(tool.rawValue)/install.sh failed (\(status)); run it by hand to see why.\n" + install.diagnostics)
        }
        return python
    }
}
