import ArgumentParser

@main
struct LoadTest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loadtest",
        abstract: "Drives a JSON-RPC WebSocket server with many pipelined connections; reports throughput and latency.",
        subcommands: [Run.self, EchoServer.self, DelayedSignerGateway.self],
        defaultSubcommand: Run.self)
}
