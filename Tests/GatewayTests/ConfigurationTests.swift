import Gateway
import Node
import TestSupport
import Testing

@Suite struct ConfigurationTests {
    @Test func yamlThenEnvironmentOverride() throws {
        var configuration = GatewayConfiguration()
        try ConfigurationLoader.apply(
            yaml: """
                server:
                  port: 9000
                limits:
                  maxBatchItems: 10
                node:
                  url: ws://10.0.0.1:8546/
                logging:
                  level: debug
                """, source: "test.yaml", to: &configuration)
        #expect(configuration.server.port == 9000)
        #expect(configuration.server.rpcLimits.maximumBatchItems == 10)
        #expect(configuration.node.url == "ws://10.0.0.1:8546/")
        #expect(configuration.logLevel == .debug)
    }

    @Test func environmentVariableNames() {
        let names = Dictionary(uniqueKeysWithValues: ConfigurationKeys.all.map { ($0.path, $0.environmentVariable) })
        #expect(names["server.port"] == "SIGNER_GATEWAY_SERVER_PORT")
        #expect(names["server.tls.privateKey"] == "SIGNER_GATEWAY_SERVER_TLS_PRIVATE_KEY")
        #expect(names["limits.maxHTTPBodyBytes"] == "SIGNER_GATEWAY_LIMITS_MAX_HTTP_BODY_BYTES")
        #expect(names["node.url"] == "SIGNER_GATEWAY_NODE_URL")
        #expect(Set(names.values).count == names.count)
    }

    @Test func loadAppliesTheEnvironmentLast() throws {
        let configuration = try ConfigurationLoader.load(
            path: nil,
            environment: [
                "SIGNER_GATEWAY_SERVER_PORT": "0", "SIGNER_GATEWAY_NODE_URL": "wss://node.example:443/rpc",
            ])
        #expect(configuration.server.port == 0)
        #expect(configuration.node.url == "wss://node.example:443/rpc")
    }

    @Test(arguments: [
        ("server:\n  prot: 1\n", "unknown key \"server.prot\""),
        ("server:\n  port: 70000\n", "server.port"),
        ("limits:\n  maxConnections: many\n", "limits.maxConnections"),
        ("logging:\n  level: loud\n", "logging.level"),
        ("server: [1, 2]\n", "single value"),
    ])
    func mistakesAreNamed(yaml: String, expected: String) {
        var configuration = GatewayConfiguration()
        do {
            try ConfigurationLoader.apply(yaml: yaml, source: "test.yaml", to: &configuration)
            Issue.record("\(yaml) was accepted")
        } catch {
            #expect(error.description.contains(expected), "\(error.description)")
        }
    }

    @Test func nodeURLMustBeAURL() throws {
        #expect(throws: ConfigurationError.self) {
            try ConfigurationLoader.load(path: nil, environment: ["SIGNER_GATEWAY_NODE_URL": "not a url"])
        }
        let http = try ConfigurationLoader.load(
            path: nil, environment: ["SIGNER_GATEWAY_NODE_URL": "http://127.0.0.1:8545"])
        #expect(try http.nodeEndpoint().isWebSocket == false)
    }

    @Test func nodeURLsArePrintedWithoutTheirPath() throws {
        // Providers put API keys in the path: logs and check-config show scheme, host and port only.
        let endpoint = try #require(NodeEndpoint(url: "wss://mainnet.example.io:8443/v3/0123456789abcdef"))
        #expect(endpoint.redacted == "wss://mainnet.example.io:8443/<redacted>")
        #expect("\(endpoint)" == endpoint.redacted)
        #expect(!endpoint.redacted.contains("0123456789abcdef"))
        #expect(endpoint.url == "wss://mainnet.example.io:8443/v3/0123456789abcdef")
        #expect(NodeEndpoint(url: "ws://127.0.0.1:8546/")?.redacted == "ws://127.0.0.1:8546/")
    }

    @Test func shippedConfigurationFilesAreValid() throws {
        for file in ["Config/gateway.yaml"] {
            let path = Repository.path(file)
            _ = try ConfigurationLoader.load(path: path, environment: [:])
        }
    }
}
