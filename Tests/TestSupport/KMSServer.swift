import Foundation

/// A local AWS KMS (Tools/kms: moto, patched to answer as KMS does for secp256k1 keys) on a free port, with an IAM
/// user, its access key and `keyCount` `ECC_SECG_P256K1` signing keys made by `setup_keys.py`. SigV4 and the IAM
/// policy are enforced on every request after the setup's own, so a wrong secret is refused as AWS would.
public final class KMSServer: Sendable {
    public struct Key: Sendable {
        public let keyID: String
        public let arn: String
        /// `alias/<prefix>-<i>`.
        public let alias: String
        /// 0x + 40 lower-case hex, derived from the public key KMS holds.
        public let address: String
    }

    public let endpoint: String
    public let region: String
    public let accessKeyID: String
    public let secretAccessKey: String
    public let keys: [Key]
    private let process: ManagedProcess
    private let python: String

    public static func start(keyCount: Int = 3, signLatencyMilliseconds: Int = 0) async throws -> KMSServer {
        let python = try await PythonTools.python(.kms)
        let free = try await runTool(python, ["setup_keys.py", "--free-requests"])
        guard let freeRequests = Int(free.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw TestSupportError("setup_keys.py --free-requests printed \(free)")
        }
        let process = try ManagedProcess(
            name: "kms", executable: python,
            arguments: [
                Repository.path("Tools/kms/kms_server.py"), "--port", "0", "--enforce-auth", String(freeRequests),
                "--sign-latency-ms", String(signLatencyMilliseconds),
            ])
        let ready = try await process.waitForLine(timeout: .seconds(60)) { $0.hasPrefix("kms listening on ") }
        let endpoint = String(ready.dropFirst("kms listening on ".count))
        let setup = try await runTool(python, ["setup_keys.py", "--endpoint", endpoint, "--count", String(keyCount)])
        guard let object = try JSONSerialization.jsonObject(with: Data(setup.utf8)) as? [String: Any],
            let accessKeyID = object["accessKeyId"] as? String,
            let secretAccessKey = object["secretAccessKey"] as? String, let region = object["region"] as? String,
            let keys = object["keys"] as? [[String: Any]]
        else { throw TestSupportError("unexpected setup_keys.py output: \(setup)") }
        return KMSServer(
            endpoint: endpoint, region: region, accessKeyID: accessKeyID, secretAccessKey: secretAccessKey,
            keys: try keys.map { key in
                guard let keyID = key["keyId"] as? String, let arn = key["arn"] as? String,
                    let alias = key["alias"] as? String, let address = key["address"] as? String
                else { throw TestSupportError("unexpected key in setup_keys.py output: \(key)") }
                return Key(keyID: keyID, arn: arn, alias: alias, address: address)
            }, process: process, python: python)
    }

    private init(
        endpoint: String, region: String, accessKeyID: String, secretAccessKey: String, keys: [Key],
        process: ManagedProcess, python: String
    ) {
        self.endpoint = endpoint
        self.region = region
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.keys = keys
        self.process = process
        self.python = python
    }

    /// For SIGSTOP / SIGCONT: a server that takes connections and never answers, as in a network partition.
    public var pid: Int32 { process.pid }

    /// `DisableKey` (`enable: false`) or `EnableKey` on one key, as its owner would in the console.
    public func setEnabled(_ enabled: Bool, key: Key) async throws {
        _ = try await Self.runTool(
            python,
            [
                "setup_keys.py", enabled ? "enable" : "disable", "--endpoint", endpoint, "--key-id", key.keyID,
                "--access-key-id", accessKeyID, "--secret-access-key", secretAccessKey, "--region", region,
            ])
    }

    public func stop() { process.stop() }

    deinit { stop() }

    private static func runTool(_ python: String, _ arguments: [String]) async throws -> String {
        try await ManagedProcess.output(
            name: "Tools/kms/\(arguments[0])", executable: python,
            arguments: [Repository.path("Tools/kms/\(arguments[0])")] + arguments.dropFirst()
        ).joined(separator: "\n")
    }
}
