import Foundation
import Gateway
import TestSupport
import Testing

/// The `backends:` list: entries read from YAML, addressed from the environment by name, checked against their
/// type's keys and settings before anything is contacted, and printed by `check-config` without a secret.
@Suite struct BackendConfigurationTests {
    static let yaml = """
        backends:
          - type: pkcs11
            name: cloud-hsm
            module: /opt/cloudhsm/lib/libcloudhsm_pkcs11.so
            tokenLabel: hsm1
            pin: env:CLOUDHSM_PIN
            keyLabels: signer-*
          - type: awsKms
            name: kms
            region: eu-west-1
            keys: alias/a,alias/b
          - type: awsKms
            name: kms-us
            region: us-east-1
        """

    static func load(_ yaml: String, environment: [String: String] = [:]) throws -> GatewayConfiguration {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("backends-\(UUID()).yaml")
        try yaml.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        return try ConfigurationLoader.load(path: file.path, environment: environment)
    }

    @Test func entriesKeepTheirOrderTypeAndValues() throws {
        let backends = try Self.load(Self.yaml).backends
        #expect(backends.map(\.name) == ["cloud-hsm", "kms", "kms-us"])
        #expect(backends.map(\.type) == [.pkcs11, .awsKms, .awsKms])
        #expect(backends[0].values["tokenLabel"] == "hsm1")
        #expect(backends[1].values["keys"] == "alias/a,alias/b")
    }

    /// The longest name that matches wins, so `kms` and `kms-us` are both addressable.
    @Test func theEnvironmentAddressesAnEntryByName() throws {
        let backends = try Self.load(
            Self.yaml,
            environment: [
                "SIGNER_GATEWAY_BACKENDS_CLOUD_HSM_PIN": "file:/run/secrets/pin",
                "SIGNER_GATEWAY_BACKENDS_KMS_REGION": "eu-central-1",
                "SIGNER_GATEWAY_BACKENDS_KMS_US_MAX_RETRIES": "9",
            ]
        ).backends
        #expect(backends[0].values["pin"] == "file:/run/secrets/pin")
        #expect(backends[1].values["region"] == "eu-central-1")
        #expect(backends[2].values["region"] == "us-east-1")
        #expect(backends[2].values["maxRetries"] == "9")
    }

    @Test(arguments: [
        (
            "backends:\n  - type: hsm\n    name: a\n",
            "\"hsm\" is not one of keystore, pkcs11, awsKms, azureKeyVault, vault"
        ),
        ("backends:\n  - type: awsKms\n", "has no name"),
        ("backends:\n  - type: awsKms\n    name: a\n", "backends[a].region: required"),
        ("backends:\n  - type: awsKms\n    name: a\n    region: x\n    sesionToken: env:T\n", "unknown key \"sesionToken\""),
        ("backends:\n  - {type: awsKms, name: a, region: x}\n  - {type: awsKms, name: a, region: y}\n", "two entries are named \"a\""),
        ("backends:\n  - {type: awsKms, name: a, region: x, endpoint: ftp://x}\n", "backends[a].endpoint"),
        ("backends:\n  - {type: awsKms, name: a, region: x, maxRetries: lots}\n", "backends[a].maxRetries"),
        (
            "backends:\n  - {type: pkcs11, name: h, module: /m.so, tokenLabel: t, pin: env:P, keyIds: zz}\n",
            "backends[h].keyIds: \"zz\" is not a hex CKA_ID"
        ),
        ("backends:\n  - {type: pkcs11, name: h, module: /m.so, tokenLabel: t}\n", "backends[h].pin: required"),
        ("backends:\n  - {type: azureKeyVault, name: a}\n", "backends[a].vaultUrl: required"),
        ("backends:\n  - {type: azureKeyVault, name: a, vaultUrl: 'http://v.x'}\n", "backends[a].vaultUrl"),
        (
            "backends:\n  - {type: azureKeyVault, name: a, vaultUrl: 'https://v.x', clientSecret: env:S}\n",
            "backends[a].clientId: required with clientSecret authentication"
        ),
        (
            "backends:\n  - {type: azureKeyVault, name: a, vaultUrl: 'https://v.x', authentication: cert}\n",
            "\"cert\" is not clientSecret or managedIdentity"
        ),
        (
            "backends:\n  - {type: azureKeyVault, name: a, vaultUrl: 'https://v.x', "
                + "authentication: managedIdentity, keys: 'a/b/c'}\n",
            "backends[a].keys: \"a/b/c\" is not a key name or name/version"
        ),
        ("backends:\n  - {type: vault, name: v, address: 'https://v:1'}\n", "give a token, or roleId and secretId"),
        (
            "backends:\n  - {type: vault, name: v, address: 'https://v:1', token: env:T, roleId: env:R}\n",
            "not both"
        ),
        (
            "backends:\n  - {type: vault, name: v, address: 'https://v:1', roleId: env:R}\n",
            "backends[v].roleId: AppRole needs both roleId and secretId"
        ),
        (
            "backends:\n  - {type: vault, name: v, address: 'https://v:1', token: env:T, mode: kv2}\n",
            "backends[v].paths: required in kv2 mode"
        ),
        (
            "backends:\n  - {type: vault, name: v, address: 'https://v:1', token: env:T, mode: transit}\n",
            "\"transit\" is not ethsign or kv2"
        ),
        (
            "backends:\n  - {type: vault, name: v, address: 'https://v:1', token: env:T, legacyForDynamicFee: maybe}\n",
            "backends[v].legacyForDynamicFee: \"maybe\" is not true or false"
        ),
        (
            "backends:\n  - {type: vault, name: v, address: 'https://v:1', token: env:T, clientKey: /k.pem}\n",
            "clientCertificate and clientKey go together"
        ),
        ("backends:\n  - {type: vault, name: v, address: 'vault:8200', token: env:T}\n", "backends[v].address"),
    ])
    func mistakesAreNamed(yaml: String, expected: String) {
        #expect(throws: ConfigurationError.self) { try Self.load(yaml) }
        do {
            _ = try Self.load(yaml)
        } catch {
            #expect("\(error)".contains(expected), "\(error)")
        }
    }

    @Test func aVariableForNoEntryOrNoKeyIsAnError() throws {
        let noEntry = try #require(throws: ConfigurationError.self) {
            try Self.load(Self.yaml, environment: ["SIGNER_GATEWAY_BACKENDS_VAULT_TOKEN": "env:T"])
        }
        #expect(noEntry.description.contains("no backend entry has that name"))
        let noKey = try #require(throws: ConfigurationError.self) {
            try Self.load(Self.yaml, environment: ["SIGNER_GATEWAY_BACKENDS_CLOUD_HSM_PASSWORD": "env:T"])
        }
        #expect(noKey.description.contains("has no key PASSWORD"))
    }

    /// Azure and Vault entries from YAML and the environment, as an operator writes them.
    @Test func azureAndVaultEntriesTakeTheirKeysFromTheEnvironment() throws {
        let configuration = try Self.load(
            """
            backends:
              - type: azureKeyVault
                name: akv
                vaultUrl: https://my-vault.vault.azure.net
                authentication: managedIdentity
              - type: vault
                name: vault-eu
                address: https://vault.example.com:8200
                token: env:VAULT_TOKEN
            """,
            environment: [
                "SIGNER_GATEWAY_BACKENDS_AKV_CLIENT_ID": "user-assigned-id",
                "SIGNER_GATEWAY_BACKENDS_AKV_KEYS": "signer-0,signer-1/0123abcd",
                "SIGNER_GATEWAY_BACKENDS_VAULT_EU_NAMESPACE": "team-a",
                "SIGNER_GATEWAY_BACKENDS_VAULT_EU_LEGACY_FOR_DYNAMIC_FEE": "true",
                "SIGNER_GATEWAY_BACKENDS_VAULT_EU_CA_FILE": "/etc/ssl/vault-ca.pem",
            ])
        #expect(configuration.backends.map(\.type) == [.azureKeyVault, .vault])
        #expect(configuration.backends[0].values["clientId"] == "user-assigned-id")
        #expect(configuration.backends[0].values["keys"] == "signer-0,signer-1/0123abcd")
        #expect(configuration.backends[1].values["namespace"] == "team-a")
        #expect(configuration.backends[1].values["legacyForDynamicFee"] == "true")
        #expect(configuration.backends[1].values["caFile"] == "/etc/ssl/vault-ca.pem")
    }

    /// `check-config` shows references, never a bare secret value.
    @Test func describedWithoutSecrets() throws {
        let configuration = try Self.load(
            """
            backends:
              - type: awsKms
                name: kms
                region: eu-west-1
                accessKeyId: AKIAEXAMPLE
                secretAccessKey: wJalrXUtnFEMI/K7MDENG
            """)
        let text = ConfigurationLoader.describe(configuration)
        #expect(text.contains("backends[kms].region = eu-west-1"))
        #expect(text.contains("backends[kms].secretAccessKey = <redacted>"))
        #expect(!text.contains("wJalrXUtnFEMI"))
        #expect(!text.contains("AKIAEXAMPLE"))

        let vault = ConfigurationLoader.describe(
            try Self.load(
                """
                backends:
                  - {type: vault, name: v, address: 'https://v:1', roleId: rid-123, secretId: sid-456}
                  - {type: azureKeyVault, name: a, vaultUrl: 'https://x.y', clientId: c, clientSecret: s3cr3t}
                """))
        #expect(vault.contains("backends[v].roleId = <redacted>"))
        #expect(vault.contains("backends[a].clientSecret = <redacted>"))
        #expect(!vault.contains("sid-456") && !vault.contains("rid-123") && !vault.contains("s3cr3t"))
    }

    /// Every shipped example is valid, and says what it configures.
    @Test(arguments: ["keystore", "pkcs11", "awsKms", "azureKeyVault", "vault"])
    func shippedExamplesAreValid(type: String) throws {
        let configuration = try ConfigurationLoader.load(
            path: Repository.path("Config/examples/\(type).yaml"), environment: [:])
        #expect(configuration.backends.count == 1)
        #expect(configuration.backends.first?.type.rawValue == type)
    }
}
