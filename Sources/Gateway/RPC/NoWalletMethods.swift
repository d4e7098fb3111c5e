import JSON
import JSONRPC

/// The account and signing methods of a gateway that holds no keys yet: `eth_accounts` is empty, and signing
/// requests are refused with 4100 instead of being proxied to the node (whose own accounts must never sign for a
/// gateway client).
public struct NoWalletMethods: LocalMethods {
    public static let signingMethods = [
        "eth_sendTransaction", "eth_signTransaction", "eth_sign", "personal_sign", "eth_signTypedData",
        "eth_signTypedData_v3", "eth_signTypedData_v4",
    ]

    public init() {}

    public var handlers: [String: MethodHandler] {
        var handlers: [String: MethodHandler] = ["eth_accounts": { _, _, reply in reply(.success(.array([]))) }]
        for method in Self.signingMethods {
            handlers[method] = { _, _, reply in
                reply(
                    .failure(
                        .unauthorized("\(method): the gateway has no key backends configured, so it holds no accounts"))
                )
            }
        }
        return handlers
    }
}
