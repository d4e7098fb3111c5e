import Foundation
import NIOHTTP1

/// A local Azure Key Vault (Tools/azure: REST 7.4 over HTTPS with its own CA, an Entra ID authority and an IMDS
/// endpoint, checked against Microsoft's own SDK) on free ports, with `keyCount` P-256K keys made by
/// `setup_keys.py`. Started by pid, stopped by pid.
public final class AzureServer: Sendable {
    public struct Key: Sendable {
        public let name: String
        public let version: String
        public let kid: String
        /// 0x + 40 lower-case hex, derived from the public key the vault holds.
        public let address: String
    }

    public let vault: String
    public let authority: String
    public let imds: String
    /// The test CA: trust it, and only it.
    public let ca: String
    public let tenant: String
    public let clientID: String
    public let clientSecret: String
    /// The machine's user-assigned identity, if it was started with one.
    public let imdsClientID: String?
    public let keys: [Key]
    private let process: ManagedProcess
    private let python: String

    public static func start(
        keyCount: Int = 3, tokenLifetimeSeconds: Int = 3600, imdsClientID: String? = nil, hsm: Bool = false,
        signLatencyMilliseconds: Int = 0
    ) async throws -> AzureServer {
        let python = try await PythonTools.python(.azure)
        let certificates = FileManager.default.temporaryDirectory.appendingPathComponent("signer-gateway-azure-certs")
        let tenant = "tenant-\(UUID().uuidString.prefix(8).lowercased())"
        let clientID = UUID().uuidString.lowercased()
        let clientSecret = "secret-\(UUID().uuidString)"
        var arguments = [
            Repository.path("Tools/azure/azure_server.py"), "--port", "0", "--imds-port", "0", "--cert-dir",
            certificates.path, "--tenant", tenant, "--client-id", clientID, "--client-secret", clientSecret,
            "--token-lifetime-s", String(tokenLifetimeSeconds), "--sign-latency-ms", String(signLatencyMilliseconds),
        ]
        if let imdsClientID { arguments += ["--imds-client-id", imdsClientID] }
        let process = try ManagedProcess(name: "azure", executable: python, arguments: arguments)
        let ready = try await process.waitForLine(timeout: .seconds(60)) { $0.hasPrefix("{") }
        guard let line = try JSONSerialization.jsonObject(with: Data(ready.utf8)) as? [String: Any],
            let vault = line["vault"] as? String, let authority = line["authority"] as? String,
            let imds = line["imds"] as? String, let ca = line["ca"] as? String
        else { throw TestSupportError("unexpected azure_server.py ready line: \(ready)") }
        let connection = [
            "--vault", vault, "--ca", ca, "--tenant", tenant, "--client-id", clientID, "--client-secret", clientSecret,
        ]
        let keys =
            keyCount > 0
            ? try await makeKeys(
                python: python, connection: connection, count: keyCount, prefix: "gateway-test", hsm: hsm)
            : []
        let server = AzureServer(
            vault: vault, authority: authority, imds: imds, ca: ca, tenant: tenant, clientID: clientID,
            clientSecret: clientSecret, imdsClientID: imdsClientID, keys: keys, process: process, python: python)
        // The counters start at zero for the test: the setup's own SDK calls are not the backend's.
        try await server.control("reset")
        return server
    }

    private init(
        vault: String, authority: String, imds: String, ca: String, tenant: String, clientID: String,
        clientSecret: String, imdsClientID: String?, keys: [Key], process: ManagedProcess, python: String
    ) {
        self.vault = vault
        self.authority = authority
        self.imds = imds
        self.ca = ca
        self.tenant = tenant
        self.clientID = clientID
        self.clientSecret = clientSecret
        self.imdsClientID = imdsClientID
        self.keys = keys
        self.process = process
        self.python = python
    }

    /// `setup_keys.py`: `count` P-256K keys named `<prefix>-<i>` (a new version of each if the names exist).
    public func makeKeys(count: Int, prefix: String = "gateway-test", hsm: Bool = false) async throws -> [Key] {
        try await Self.makeKeys(python: python, connection: connection, count: count, prefix: prefix, hsm: hsm)
    }

    private static func makeKeys(
        python: String, connection: [String], count: Int, prefix: String, hsm: Bool
    ) async throws -> [Key] {
        let output = try await setupKeys(
            python: python, ["--count", String(count), "--prefix", prefix] + (hsm ? ["--hsm"] : []) + connection)
        guard let object = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any],
            let keys = object["keys"] as? [[String: Any]]
        else { throw TestSupportError("unexpected setup_keys.py output: \(output)") }
        return try keys.map { key in
            guard let name = key["name"] as? String, let version = key["version"] as? String,
                let kid = key["kid"] as? String, let address = key["address"] as? String
            else { throw TestSupportError("unexpected key in setup_keys.py output: \(key)") }
            return Key(name: name, version: version, kid: kid, address: address)
        }
    }

    /// Soft-deletes the key (and purges it with `purge`), as its owner would.
    public func delete(_ key: Key, purge: Bool = false) async throws {
        _ = try await Self.setupKeys(
            python: python, ["delete"] + connection + ["--name", key.name] + (purge ? ["--purge"] : []))
    }

    /// Disables or enables the key's version.
    public func setEnabled(_ enabled: Bool, _ key: Key) async throws {
        _ = try await Self.setupKeys(
            python: python,
            [enabled ? "enable" : "disable"] + connection + ["--name", key.name, "--version", key.version])
    }

    /// A key on another curve (`P-256`), which the gateway must not list: made through the REST API with a token
    /// (whose request counts in the stats).
    public func makeOtherKey(name: String, curve: String = "P-256") async throws {
        let form =
            "grant_type=client_credentials&client_id=\(clientID)&client_secret=\(clientSecret)"
            + "&scope=https%3A%2F%2Fvault.azure.net%2F.default"
        let token = try await TestHTTP.send(
            .POST, "\(authority)/\(tenant)/oauth2/v2.0/token",
            headers: [("Content-Type", "application/x-www-form-urlencoded")], body: Array(form.utf8), caFile: ca)
        guard let accessToken = (token.json as? [String: Any])?["access_token"] as? String else {
            throw TestSupportError("no token: \(token.text)")
        }
        let created = try await TestHTTP.postJSON(
            "\(vault)/keys/\(name)/create?api-version=7.4", ["kty": "EC", "crv": curve],
            headers: [("Authorization", "Bearer \(accessToken)")], caFile: ca)
        guard created.status == 200 else { throw TestSupportError("create \(name): \(created.status) \(created.text)") }
    }

    /// `POST /_control/<name>` (throttle, fail, expire-tokens, sign-latency, reset): the JSON answer.
    @discardableResult
    public func control(_ name: String, _ body: [String: Any] = [:]) async throws -> [String: Any] {
        let answer = try await TestHTTP.postJSON("\(vault)/_control/\(name)", body, caFile: ca)
        guard answer.status == 200, let object = answer.json as? [String: Any] else {
            throw TestSupportError("/_control/\(name): \(answer.status) \(answer.text)")
        }
        return object
    }

    /// `GET /_control/stats`.
    public func stats() async throws -> [String: Any] {
        let answer = try await TestHTTP.send(.GET, "\(vault)/_control/stats", caFile: ca)
        guard answer.status == 200, let object = answer.json as? [String: Any] else {
            throw TestSupportError("/_control/stats: \(answer.status) \(answer.text)")
        }
        return object
    }

    public var pid: Int32 { process.pid }

    public func stop() { process.stop() }

    deinit { stop() }

    private var connection: [String] {
        ["--vault", vault, "--ca", ca, "--tenant", tenant, "--client-id", clientID, "--client-secret", clientSecret]
    }

    private static func setupKeys(python: String, _ arguments: [String]) async throws -> String {
        try await ManagedProcess.output(
            name: "Tools/azure/setup_keys.py", executable: python,
            arguments: [Repository.path("Tools/azure/setup_keys.py")] + arguments
        ).joined(separator: "\n")
    }
}
