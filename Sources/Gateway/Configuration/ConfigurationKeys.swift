import Ethereum
import Logging
import Node
import Signers

/// The table of configuration keys: dotted YAML path, environment variable, meaning, and how a value is applied.
public struct ConfigurationKey: Sendable {
    public let path: String
    public let documentation: String
    let apply: @Sendable (inout GatewayConfiguration, String) throws(ConfigurationError) -> Void
    let current: @Sendable (GatewayConfiguration) -> String?

    /// `server.tls.privateKey` → `SIGNER_GATEWAY_SERVER_TLS_PRIVATE_KEY`.
    public var environmentVariable: String {
        var name = "SIGNER_GATEWAY"
        for component in path.split(separator: ".") {
            name += "_"
            var previous: Character? = nil
            let characters = Array(component)
            for (index, character) in characters.enumerated() {
                let next = index + 1 < characters.count ? characters[index + 1] : nil
                if character.isUppercase, let previous,
                    previous.isLowercase || previous.isNumber || (next?.isLowercase ?? false)
                {
                    name += "_"
                }
                name += character.uppercased()
                previous = character
            }
        }
        return name
    }
}

extension ConfigurationKey {
    /// A whole number in `range` (`Int` or `UInt64` settings).
    static func integer<Number: FixedWidthInteger & Sendable>(
        _ path: String, _ documentation: String, range: ClosedRange<Number>,
        _ keyPath: any (WritableKeyPath<GatewayConfiguration, Number> & Sendable)
    ) -> ConfigurationKey {
        ConfigurationKey(
            path: path, documentation: documentation,
            apply: { configuration, text throws(ConfigurationError) in
                guard let value = Number(text.trimmingCharacters(in: .whitespaces)), range.contains(value) else {
                    throw ConfigurationError(
                        "\(path): \"\(text)\" is not a whole number in \(range.lowerBound)…\(range.upperBound)")
                }
                configuration[keyPath: keyPath] = value
            }, current: { String($0[keyPath: keyPath]) })
    }

    static func string(
        _ path: String, _ documentation: String,
        _ keyPath: any (WritableKeyPath<GatewayConfiguration, String> & Sendable)
    ) -> ConfigurationKey {
        ConfigurationKey(
            path: path, documentation: documentation,
            apply: { configuration, text in
                configuration[keyPath: keyPath] = text
            }, current: { $0[keyPath: keyPath] })
    }

    static func optionalString(
        _ path: String, _ documentation: String,
        _ keyPath: any (WritableKeyPath<GatewayConfiguration, String?> & Sendable)
    ) -> ConfigurationKey {
        ConfigurationKey(
            path: path, documentation: documentation,
            apply: { configuration, text in
                configuration[keyPath: keyPath] = text.isEmpty ? nil : text
            }, current: { $0[keyPath: keyPath] })
    }
}

public enum ConfigurationKeys {
    public static let all: [ConfigurationKey] = [
        .string("server.host", "Address to listen on (0.0.0.0 for all interfaces).", \.server.host),
        .integer(
            "server.port", "Port for HTTP and WebSocket JSON-RPC (0 picks a free one).", range: 0...65535, \.server.port
        ),
        ConfigurationKey(
            path: "server.tls.certificate",
            documentation: "PEM certificate chain; with server.tls.privateKey enables TLS (wss://, https://).",
            apply: { configuration, text in
                let key = configuration.server.tls?.privateKey ?? ""
                configuration.server.tls = text.isEmpty ? nil : .init(certificateChain: text, privateKey: key)
            }, current: { $0.server.tls?.certificateChain }),
        ConfigurationKey(
            path: "server.tls.privateKey", documentation: "PEM private key of the certificate.",
            apply: { configuration, text in
                let chain = configuration.server.tls?.certificateChain ?? ""
                configuration.server.tls = .init(certificateChain: chain, privateKey: text)
            }, current: { $0.server.tls?.privateKey }),
        ConfigurationKey(
            path: "access.anonymous",
            documentation:
                "Role of callers without a token: none (a token is required), user or admin (dev only).",
            apply: { configuration, text throws(ConfigurationError) in
                let value = text.trimmingCharacters(in: .whitespaces)
                guard value == "none" || Role(rawValue: value) != nil else {
                    throw ConfigurationError("access.anonymous: \"\(text)\" is not one of none, user, admin")
                }
                configuration.access.anonymousRole = Role(rawValue: value)
            }, current: { $0.access.anonymousRole?.rawValue ?? "none" }),
        ConfigurationKey(
            path: "access.allowAnonymousBeyondLoopback",
            documentation: "Allow anonymous access while listening on an address other than loopback.",
            apply: { configuration, text throws(ConfigurationError) in
                guard let value = Bool(text.trimmingCharacters(in: .whitespaces).lowercased()) else {
                    throw ConfigurationError("access.allowAnonymousBeyondLoopback: \"\(text)\" is not true or false")
                }
                configuration.access.allowAnonymousBeyondLoopback = value
            }, current: { String($0.access.allowAnonymousBeyondLoopback) }),
        .optionalString(
            "audit.path", "Audit log file: one JSON line per signing decision, fsynced before the answer.",
            \.auditPath),
        ConfigurationKey(
            path: "server.allowedOrigins",
            documentation:
                "Browser origins allowed (comma-separated; * for any). Requests with another Origin are refused.",
            apply: { configuration, text in
                configuration.server.allowedOrigins = text.split(separator: ",").map {
                    $0.trimmingCharacters(in: .whitespaces)
                }.filter { !$0.isEmpty }
            }, current: { $0.server.allowedOrigins.joined(separator: ",") }),
        .integer(
            "server.drainSeconds", "Graceful shutdown: how long in-flight requests may finish.", range: 0...3600,
            \.server.drainSeconds),
        .integer(
            "limits.maxMessageBytes",
            "Largest WebSocket message; larger closes the connection with 1009 (geth: 32 MiB).",
            range: 1024...(1 << 30), \.server.limits.maximumMessageBytes),
        .integer(
            "limits.maxHTTPBodyBytes", "Largest HTTP request body; larger gets 413 (geth: 5 MiB).",
            range: 1024...(1 << 30), \.server.limits.maximumHTTPBodyBytes),
        .integer(
            "limits.maxConnections", "Simultaneous client connections.", range: 1...1_000_000,
            \.server.limits.maximumConnections),
        .integer(
            "limits.maxInFlightPerConnection", "Requests a WebSocket connection may have in flight before reads pause.",
            range: 1...100_000, \.server.limits.maximumInFlightPerConnection),
        .integer(
            "limits.maxOutboundBytes", "Bytes queued to a client that is not reading before it is disconnected (1008).",
            range: 65536...(1 << 31), \.server.limits.maximumOutboundBytes),
        .integer(
            "limits.pingIntervalSeconds",
            "Idle time before the server pings; no answer within another interval closes.",
            range: 1...3600, \.server.limits.pingIntervalSeconds),
        .integer(
            "limits.writeTimeoutSeconds", "How long a closing connection may take to accept its close frame.",
            range: 1...600, \.server.limits.writeTimeoutSeconds),
        .integer(
            "limits.maxBatchItems", "Items in one JSON-RPC batch (geth: 1000).", range: 1...100_000,
            \.server.rpcLimits.maximumBatchItems),
        .integer(
            "limits.maxBatchResponseBytes", "Batch response size after which items get -32003 (geth: 25 000 000).",
            range: 1024...(1 << 31), \.server.rpcLimits.maximumBatchResponseBytes),
        ConfigurationKey(
            path: "node.url",
            documentation:
                "The node: ws:// or wss:// (subscriptions), or http:// or https://. Printed without its path "
                + "(API keys).",
            apply: { configuration, text in configuration.node.url = text },
            current: { configuration in NodeEndpoint(url: configuration.node.url)?.redacted ?? "<invalid>" }),
        .integer(
            "node.requestTimeoutSeconds", "How long a proxied call waits for the node (then -32002).",
            range: 1...3600, \.node.requestTimeoutSeconds),
        .integer(
            "node.reconnectInitialMilliseconds", "First delay before reconnecting to the node.", range: 1...600_000,
            \.node.reconnectInitialMilliseconds),
        .integer(
            "node.reconnectMaximumMilliseconds", "Longest delay between reconnection attempts.", range: 1...600_000,
            \.node.reconnectMaximumMilliseconds),
        .integer(
            "node.pingIntervalSeconds",
            "Silence after which the node is pinged; no answer within another interval reconnects.",
            range: 1...3600, \.node.pingIntervalSeconds),
        .optionalString("node.caFile", "CA bundle (PEM) for a wss:// node signed by a private CA.", \.node.caFile),
        .optionalString(
            "keystore.directory", "Directory of Web3 Secret Storage v3 keystore files (enables the keystore backend).",
            \.wallet.keystoreDirectory),
        ConfigurationKey(
            path: "keystore.password", documentation: "Keystore password by reference: env:NAME or file:/path.",
            apply: { configuration, text in configuration.wallet.keystorePassword = text.isEmpty ? nil : text },
            current: { $0.wallet.keystorePassword.map { SecretReference($0).description } }),
        .integer(
            "wallet.refreshSeconds", "How often backends are asked for their accounts again.", range: 1...86_400,
            \.wallet.refreshSeconds),
        ConfigurationKey(
            path: "signers.signTimeoutSeconds",
            documentation: "A backend signature unanswered this long fails (and is retried).",
            apply: { configuration, text throws(ConfigurationError) in
                guard let value = Int(text), (1...600).contains(value) else {
                    throw ConfigurationError("signers.signTimeoutSeconds: \"\(text)\" is not a whole number in 1…600")
                }
                configuration.wallet.settings.signTimeout = .seconds(value)
            }, current: { String($0.wallet.settings.signTimeout.components.seconds) }),
        .integer(
            "signers.maxConcurrentSignatures", "Signatures one backend may be computing at once; more wait.",
            range: 1...10_000, \.wallet.settings.maximumConcurrentSignatures),
        .string("journal.path", "SQLite file of the send journal (:memory: for none).", \.journalPath),
        .integer(
            "send.gasMarginPercent", "Added to eth_estimateGas when the caller gives no gas.", range: 0...1_000,
            \.filler.gasMarginPercent),
        .integer(
            "send.baseFeeMultiplier", "maxFeePerGas = multiplier × next base fee + tip, when not given.",
            range: 1...100,
            \.filler.baseFeeMultiplier),
        .integer(
            "send.maxQueuedPerAddress",
            "Transactions one address may have queued before the node accepted them; more get -32005.",
            range: 1...1_000_000, \.send.maximumQueuedPerAddress),
        .integer(
            "send.signWindow", "Queued transactions of one address that may be signing at once.",
            range: 1...10_000, \.send.lane.signWindow),
        .integer(
            "send.rebroadcastEveryBlocks",
            "Accepted but unmined transactions are sent again every this many blocks (0: never).",
            range: 0...10_000, \.send.lane.rebroadcastEveryBlocks),
        .integer(
            "send.replaceAfterBlocks",
            "An accepted transaction unmined this many blocks is replaced with higher fees (0: never).",
            range: 0...100_000, \.send.lane.replaceAfterBlocks),
        .integer(
            "send.replacementBumpPercent", "How much a replacement raises both fees (at least geth's 10).",
            range: 10...1_000, \.send.replacementBumpPercent),
        ConfigurationKey(
            path: "send.maxFeePerGas",
            documentation: "The highest maxFeePerGas (or gasPrice) in wei a replacement may pay; empty: no cap.",
            apply: { configuration, text throws(ConfigurationError) in
                guard !text.isEmpty else { return configuration.send.maximumFeePerGas = nil }
                guard let value = UInt256(decimal: text) else {
                    throw ConfigurationError("send.maxFeePerGas: \"\(text)\" is not a whole number of wei")
                }
                configuration.send.maximumFeePerGas = value
            }, current: { $0.send.maximumFeePerGas?.decimalString ?? "" }),
        .integer(
            "receipts.confirmations", "Blocks deep a receipt is tracked (and reported) before it is final.",
            range: 1...1_000, \.receipts.confirmationDepth),
        ConfigurationKey(
            path: "logging.level", documentation: "trace, debug, info, notice, warning, error or critical.",
            apply: { configuration, text throws(ConfigurationError) in
                guard let level = Logger.Level(rawValue: text.lowercased()) else {
                    throw ConfigurationError(
                        "logging.level: \"\(text)\" is not one of trace, debug, info, notice, warning, error, critical")
                }
                configuration.logLevel = level
            }, current: { $0.logLevel.rawValue }),
    ]

    static let byPath = Dictionary(uniqueKeysWithValues: all.map { ($0.path, $0) })
}
