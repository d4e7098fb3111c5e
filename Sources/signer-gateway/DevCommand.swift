import ArgumentParser
import Ethereum
import Foundation
import Gateway
import Logging
import Signers

/// The quickstart: a local dev node (Tools/devnode, a real EVM) and a gateway with a generated dev keystore whose
/// accounts the node funds. Nothing to configure.
struct DevCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev", abstract: "Run a dev node and the gateway with a generated, funded dev keystore.")

    @Option(help: "Gateway port.") var port = 8545
    @Option(help: "Where the dev keystore and journal live.") var dataDir = ".signer-gateway-dev"
    @Option(help: "Dev accounts to generate on first run.") var accounts = 3
    @Option(help: "Dev node block time in ms (0 = a block per transaction).") var blockTimeMs = 0

    func run() async throws {
        var logger = Logger(label: "signer-gateway")
        logger.logLevel = .info
        let keystore = (dataDir as NSString).appendingPathComponent("keystore")
        let password = "dev-password-not-secret"
        let existing =
            (try? FileManager.default.contentsOfDirectory(atPath: keystore).filter { $0.hasPrefix("UTC--") }) ?? []
        if existing.isEmpty {
            for _ in 0..<accounts {
                _ = try KeystoreBackend.write(
                    PrivateKey.random(), password: Array(password.utf8), kdf: .light, to: keystore)
            }
        }
        let addresses = try FileManager.default.contentsOfDirectory(atPath: keystore).sorted().compactMap { file in
            try? KeystoreFile(contentsOf: (keystore as NSString).appendingPathComponent(file)).address
        }

        let node = try await DevNodeProcess.start(fund: addresses, blockTimeMs: blockTimeMs)

        var configuration = try ConfigurationLoader.load(path: nil, environment: [:])
        configuration.server.port = port
        configuration.node.url = "ws://127.0.0.1:\(node.port)/"
        configuration.wallet.keystoreDirectory = keystore
        configuration.wallet.keystorePassword = password
        configuration.journalPath = (dataDir as NSString).appendingPathComponent("journal.sqlite")
        configuration.receipts.confirmationDepth = 3
        // The dev quickstart on loopback: no tokens to make (said loudly at start).
        configuration.access.anonymousRole = .user
        let application = try GatewayApplication(configuration: configuration, logger: logger)
        let banner = """

            SignerGateway dev: ws://127.0.0.1:\(port)/ (and http://127.0.0.1:\(port)/), dev node on port \(node.port)
            Funded dev accounts (keys in \(keystore), password "\(password)"):
            \(addresses.map { "  " + $0.checksummed }.joined(separator: "\n"))

            Send a transaction with web3.py (pip install web3):
              python3 - <<'PY'
              import asyncio
              from web3 import AsyncWeb3, WebSocketProvider
              async def main():
                  async with AsyncWeb3(WebSocketProvider("ws://127.0.0.1:\(port)/")) as w3:
                      sender = (await w3.eth.accounts)[0]
                      tx = await w3.eth.send_transaction({"from": sender, "to": sender, "value": 1})
                      print("hash", tx.hex(), "status", (await w3.eth.wait_for_transaction_receipt(tx)).status)
              asyncio.run(main())
              PY


            """
        // Unbuffered: the banner must show before the logs, also when stdout is a pipe.
        FileHandle.standardOutput.write(Data(banner.utf8))
        do {
            try await application.serviceGroup(logger: logger).run()
        } catch {
            await node.stop()
            throw error
        }
        await node.stop()
    }
}

/// The dev node as a child process, stopped with the command.
struct DevNodeProcess {
    let process: Process
    let port: Int

    static func start(fund: [Address], blockTimeMs: Int) async throws -> DevNodeProcess {
        let root = FileManager.default.currentDirectoryPath
        let install = "\(root)/Tools/devnode/install.sh"
        guard FileManager.default.fileExists(atPath: install) else {
            throw ValidationError("run `signer-gateway dev` from the repository root (Tools/devnode not found)")
        }
        let installer = Process()
        installer.executableURL = URL(fileURLWithPath: install)
        try installer.run()
        while installer.isRunning { try await Task.sleep(for: .milliseconds(50)) }  // not waitUntilExit: see stop()
        guard installer.terminationStatus == 0 else { throw ValidationError("Tools/devnode/install.sh failed") }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "\(root)/Tools/devnode/.venv/bin/python")
        process.arguments = [
            "\(root)/Tools/devnode/devnode.py", "--port", "0", "--block-time-ms", String(blockTimeMs),
            "--fund", fund.map(\.lowercaseHex).joined(separator: ","),
        ]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        // "devnode listening on http://127.0.0.1:PORT (ws://127.0.0.1:PORT)"
        var line = ""
        let handle = output.fileHandleForReading
        while !line.contains("\n") {
            let data = handle.availableData
            if data.isEmpty { throw ValidationError("the dev node exited before it was ready") }
            line += String(decoding: data, as: UTF8.self)
        }
        let afterHost = line.split(separator: "http://127.0.0.1:", maxSplits: 1).last ?? ""
        guard let port = Int(afterHost.prefix { $0.isNumber }) else {
            throw ValidationError("unexpected dev node output: \(line)")
        }
        return DevNodeProcess(process: process, port: port)
    }

    /// SIGTERM, then SIGKILL if it lingers. Never `waitUntilExit()` here: on Linux it spins a run loop, and this
    /// runs on a cooperative thread.
    func stop() async {
        guard process.isRunning else { return }
        process.terminate()
        for _ in 0..<100 where process.isRunning { try? await Task.sleep(for: .milliseconds(50)) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}
