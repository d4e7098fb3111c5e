import Foundation
import Yams

/// Reads `gateway.yaml`, then lets the environment override any key (`SIGNER_GATEWAY_…`, see `ConfigurationKey`).
/// Unknown keys are errors: a misspelt limit must not silently fall back to its default.
public enum ConfigurationLoader {
    public static func load(
        path: String?, environment: [String: String] = ProcessInfo.processInfo.environment
    )
        throws(ConfigurationError) -> GatewayConfiguration
    {
        var configuration = GatewayConfiguration()
        if let path {
            let text: String
            do {
                text = try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw ConfigurationError("cannot read configuration file \(path): \(error.localizedDescription)")
            }
            try apply(yaml: text, source: path, to: &configuration)
        }
        for key in ConfigurationKeys.all {
            if let value = environment[key.environmentVariable] {
                try key.apply(&configuration, value)
            }
        }
        // The `keystore.*` keys become the entry named "keystore", so that one override convention covers all.
        configuration.backends = configuration.allBackends
        configuration.wallet.keystoreDirectory = nil
        configuration.wallet.keystorePassword = nil
        try BackendConfigurationLoader.applyEnvironment(environment, to: &configuration.backends)
        if let tls = configuration.server.tls, tls.certificateChain.isEmpty || tls.privateKey.isEmpty {
            throw ConfigurationError("server.tls: give both certificate and privateKey, or neither")
        }
        _ = try configuration.nodeEndpoint()
        try KeyBackendFactory.validate(configuration.backends)
        return configuration
    }

    public static func apply(
        yaml text: String, source: String, to configuration: inout GatewayConfiguration
    )
        throws(ConfigurationError)
    {
        let document: Any?
        do {
            document = try Yams.load(yaml: text)
        } catch {
            throw ConfigurationError("\(source): not valid YAML: \(error)")
        }
        guard var document else { return }  // an empty file: all defaults
        if var mapping = document as? [String: Any], let backends = mapping.removeValue(forKey: "backends") {
            configuration.backends += try BackendConfigurationLoader.entries(from: backends, source: source)
            document = mapping
        }
        if var mapping = document as? [String: Any], var access = mapping["access"] as? [String: Any] {
            if let tokens = access.removeValue(forKey: "tokens") {
                configuration.access.tokens = try AccessTokensLoader.grants(from: tokens, source: source)
            }
            if let policies = access.removeValue(forKey: "policies") {
                configuration.access.policies = try SigningPoliciesLoader.policies(from: policies, source: source)
            }
            mapping["access"] = access.isEmpty ? nil : access
            document = mapping
        }
        var flattened: [(String, String)] = []
        try flatten(document, prefix: "", source: source, into: &flattened)
        for (path, value) in flattened {
            guard let key = ConfigurationKeys.byPath[path] else {
                let known = ConfigurationKeys.all.map(\.path).filter {
                    $0.hasPrefix(path.split(separator: ".").first.map(String.init) ?? "")
                }
                throw ConfigurationError(
                    "\(source): unknown key \"\(path)\""
                        + (known.isEmpty ? "" : " (known here: \(known.joined(separator: ", ")))"))
            }
            try key.apply(&configuration, value)
        }
    }

    private static func flatten(
        _ node: Any, prefix: String, source: String, into output: inout [(String, String)]
    )
        throws(ConfigurationError)
    {
        if let mapping = node as? [String: Any] {
            for (key, value) in mapping.sorted(by: { $0.key < $1.key }) {
                try flatten(value, prefix: prefix.isEmpty ? key : "\(prefix).\(key)", source: source, into: &output)
            }
        } else if node is [Any] {
            throw ConfigurationError("\(source): \(prefix) must be a single value, not a list")
        } else if node is NSNull {
            return
        } else {
            output.append((prefix, "\(node)"))
        }
    }

    /// The effective configuration as `key = value` lines (secrets never appear in configuration values: files and
    /// environment references do).
    public static func describe(_ configuration: GatewayConfiguration) -> String {
        (ConfigurationKeys.all.map { key in "\(key.path) = \(key.current(configuration) ?? "(unset)")" }
            + BackendConfigurationLoader.describe(configuration.allBackends)
            + configuration.access.tokens.map { token in
                "access.tokens[\(token.name)] = \(token.role.rawValue), "
                    + (token.addresses.map { "\($0.count) addresses" } ?? "every address")
            }).joined(separator: "\n")
    }
}
