import Foundation
import Synchronization

/// The Python test servers and clients under Tools/, each in its own virtualenv. `swift test` works on its own:
/// a missing virtualenv is created once per test process by the tool's idempotent install script.
public enum PythonTools {
    public enum Tool: String, Sendable {
        case devnode = "Tools/devnode"
        case clients = "Tools/clients"
    }

    private static let installed = Mutex<Set<String>>([])

    public static func python(_ tool: Tool) throws -> String {
        let python = Repository.path("\(tool.rawValue)/.venv/bin/python")
        try installed.withLock { installed in
            guard !installed.contains(tool.rawValue) else { return }
            let install = Process()
            install.executableURL = URL(fileURLWithPath: Repository.path("\(tool.rawValue)/install.sh"))
            try install.run()
            install.waitUntilExit()
            guard install.terminationStatus == 0, FileManager.default.fileExists(atPath: python) else {
                throw TestSupportError(
                    "\(tool.rawValue)/install.sh failed (\(install.terminationStatus)); run it by hand to see why")
            }
            installed.insert(tool.rawValue)
        }
        return python
    }
}
