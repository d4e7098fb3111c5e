import ArgumentParser
import Foundation
import Gateway
import Logging

@main
struct SignerGatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "signer-gateway",
        abstract: "Ethereum JSON-RPC gateway that signs with keys held in HSMs and key stores.",
        subcommands: [Serve.self, CheckConfig.self, KeystoreCommand.self, TokenCommand.self, DevCommand.self],
        defaultSubcommand: Serve.self)
}

struct ConfigOptions: ParsableArguments {
    @Option(name: .long, help: "YAML configuration file (every key can also come from SIGNER_GATEWAY_… variables).")
    var config: String?

    func load() throws -> GatewayConfiguration {
        do {
            return try ConfigurationLoader.load(path: config)
        } catch {
            throw ValidationError(error.description)
        }
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the gateway until SIGTERM or SIGINT.")

    @OptionGroup var options: ConfigOptions

    func run() async throws {
        let configuration = try options.load()
        var logger = Logger(label: "signer-gateway")
        logger.logLevel = configuration.logLevel
        let application = try GatewayApplication(configuration: configuration, logger: logger)
        try await application.serviceGroup(logger: logger).run()
        logger.info("gateway stopped: connections drained, journal closed")
    }
}

struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate the configuration and print the effective values, without starting.")

    @OptionGroup var options: ConfigOptions

    func run() throws {
        let configuration = try options.load()
        print(ConfigurationLoader.describe(configuration))
        print("configuration OK")
    }
}
