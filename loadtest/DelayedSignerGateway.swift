import ArgumentParser
import Ethereum
import Foundation
import Gateway
import Logging
import Signers

/// The gateway with one key behind a backend that takes `--latency-ms` per signature, as a remote HSM or cloud KMS
/// does, but costs nothing else: what is measured is the gateway's send pipeline (does it keep many signatures of
/// one address in flight and still submit in nonce order?), not a key server's own ceiling. The moto KMS double
/// tops out near 200 signatures/s on this machine, well below what the pipeline must show.
struct DelayedSignerGateway: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delayed-gateway",
        abstract: "The gateway with an in-process key whose every signature takes --latency-ms.")

    @Option(help: "The node: ws://host:port/.") var node: String
    @Option var port = 0
    @Option(help: "Added to every signature.") var latencyMs = 20
    @Option(help: "The key's private key, hex (a dev node's funded account).") var key: String
    @Option(help: "Journal file (':memory:' for none).") var journal = ":memory:"

    func run() async throws {
        let privateKey = try PrivateKey(bytes: Hex.decode(key))
        var configuration = GatewayConfiguration()
        configuration.server.port = port
        configuration.node.url = node
        configuration.journalPath = journal
        configuration.access.anonymousRole = .user  // a benchmark on loopback
        var logger = Logger(label: "delayed-gateway")
        logger.logLevel = .warning
        let backend = DelayedKey(key: privateKey, latency: .milliseconds(latencyMs))
        let application = try GatewayApplication(configuration: configuration, logger: logger, backends: [backend])
        let group = application.serviceGroup(logger: logger)
        async let running: Void = group.run()
        let address = try await application.server.listeningAddress
        // Unbuffered, so that a script waiting for the line sees it at once.
        FileHandle.standardOutput.write(Data(
            "delayed-gateway listening on ws://127.0.0.1:\(address.port!)/ account \(privateKey.address.checksummed)\n"
                .utf8))
        try await running
    }
}

/// One key in this process; each signature waits `latency` first, without holding a thread.
struct DelayedKey: KeyBackend {
    let name = "delayed"
    let key: PrivateKey
    let latency: Duration

    func accounts() async throws(SignerError) -> [Account] {
        [Account(publicKey: key.publicKey, backend: name, keyReference: "delayed")]
    }

    func sign(digest: Bytes32, for account: Account) async throws(SignerError) -> Signature {
        try? await Task.sleep(for: latency)
        return Secp256k1.sign(digest: digest, with: key)
    }
}
