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
        ("backends:\n  - type: hsm\n    name: a\n", "\"hsm\" is not one of keystore, pkcs11, awsKms, azureKeyVault, vault"),
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
