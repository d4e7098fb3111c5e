import Crypto
import Foundation

/// A bearer token as the gateway keeps it: the SHA-256 of the token's text, written `sha256:<64 hex>`. The token
/// itself is shown once, when it is made (`signer-gateway token new`), and is never stored, logged or compared as
/// text: a configuration file that leaks gives nobody a token.
public struct TokenDigest: Sendable, Hashable, CustomStringConvertible {
    let bytes: [UInt8]

    /// `sha256:<64 hex>`; `nil` for anything else.
    public init?(_ text: String) {
        guard text.hasPrefix("sha256:") else { return nil }
        let hex = Array(text.dropFirst("sha256:".count).utf8)
        guard hex.count == 64 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(32)
        for index in stride(from: 0, to: 64, by: 2) {
            guard let byte = UInt8(String(decoding: hex[index..<index + 2], as: UTF8.self), radix: 16) else {
                return nil
            }
            bytes.append(byte)
        }
        self.bytes = bytes
    }

    /// The digest of a presented token.
    public init(of token: String) {
        bytes = Array(SHA256.hash(data: Array(token.utf8)))
    }

    public var description: String { "sha256:" + bytes.map { String(format: "%02x", $0) }.joined() }

    /// Equal digests, compared without an early exit, so that the time taken says nothing about how many leading
    /// bytes matched.
    func matches(_ other: TokenDigest) -> Bool {
        guard bytes.count == other.bytes.count else { return false }
        var difference: UInt8 = 0
        for index in bytes.indices { difference |= bytes[index] ^ other.bytes[index] }
        return difference == 0
    }
}

public enum AccessToken {
    /// A new token: `sgw_` and 32 bytes from the system's CSPRNG (getrandom), base64url without padding.
    public static func generate() -> (token: String, digest: TokenDigest) {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let text = Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        let token = "sgw_" + text
        return (token, TokenDigest(of: token))
    }
}
