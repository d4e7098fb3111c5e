import Ethereum
import Foundation
import Gateway
import JSON
import JSONRPC
import Logging
import Testing

/// Tokens, authentication and the role policy, without a server: what each caller may do is decided here, before
/// any method runs.
@Suite struct AccessTests {
    static let alice = PrivateKey.random().address
    static let bob = PrivateKey.random().address

    static func grant(_ name: String, _ role: Role, addresses: Set<Address>? = nil) -> (AccessGrant, String) {
        let (token, digest) = AccessToken.generate()
        var grant = AccessGrant(name: name, role: role, digest: digest)
        grant.addresses = addresses
        return (grant, token)
    }

    static func request(_ method: String, _ params: JSONValue = []) -> RPCRequest {
        RPCRequest(id: .number("1"), method: method, params: params)
    }

    static func send(from address: Address) -> RPCRequest {
        request("eth_sendTransaction", [["from": .string(address.lowercaseHex), "to": .string(address.lowercaseHex)]])
    }

    @Test func aTokenIsKeptOnlyAsItsDigest() throws {
        let (token, digest) = AccessToken.generate()
        #expect(token.hasPrefix("sgw_") && token.count == 4 + 43)
        #expect(TokenDigest(digest.description) == digest)
        #expect(TokenDigest(of: token) == digest)
        #expect(!digest.description.contains(token.dropFirst(4)))
        #expect(AccessToken.generate().token != token)
        #expect(TokenDigest("sha256:1234") == nil)
        #expect(TokenDigest(token) == nil)
    }

    @Test func aCallerIsIdentifiedByHeaderOrQueryAndRefusedOtherwise() throws {
        let (user, token) = Self.grant("dapp", .user, addresses: [Self.alice])
        let access = AccessControl(grants: [user], anonymousRole: nil)
        let byHeader = try access.authenticate(authorization: "Bearer \(token)", uri: "/").get()
        #expect(byHeader.name == "dapp" && byHeader.role == .user && byHeader.addresses == [Self.alice])
        let escaped = token.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? token
        #expect(try access.authenticate(authorization: nil, uri: "/?x=1&token=\(escaped)").get().name == "dapp")
        guard case .failure(let missing) = access.authenticate(authorization: nil, uri: "/") else {
            Issue.record("a caller without a token was let in"); return
        }
        #expect(missing.description.contains("a token is required"))
        guard case .failure(let wrong) = access.authenticate(authorization: "Bearer sgw_nope", uri: "/") else {
            Issue.record("a wrong token was let in"); return
        }
        #expect(wrong.description == "the token is not valid")
        let open = AccessControl(grants: [user], anonymousRole: .user)
        #expect(try open.authenticate(authorization: nil, uri: "/").get().role == .user)
        // A wrong token is refused even where anonymous callers are let in: it is a mistake, not anonymity.
        #expect((try? open.authenticate(authorization: "Bearer sgw_nope", uri: "/").get()) == nil)
    }

    @Test func theRolePolicyDecidesBeforeAnyMethodRuns() throws {
        let (user, _) = Self.grant("dapp", .user, addresses: [Self.alice])
        var (listed, _) = Self.grant("reader", .user)
        listed.methods = ["eth_chainId", "eth_sendTransaction"]
        let (admin, _) = Self.grant("ops", .admin)
        let policy = RolePolicy(grants: [user, listed, admin])
        let dapp = Identity(name: "dapp", role: .user, addresses: [Self.alice])
        let reader = Identity(name: "reader", role: .user, methods: listed.methods)
        let ops = Identity(name: "ops", role: .admin)

        #expect(policy.check(Self.send(from: Self.alice), identity: dapp) == nil)
        #expect(policy.check(Self.send(from: Self.bob), identity: dapp)?.code == 4100)
        #expect(policy.check(Self.request("personal_sign", ["0x00", .string(Self.bob.lowercaseHex)]), identity: dapp)?.code == 4100)
        #expect(policy.check(Self.request("eth_sendTransaction", [["to": "0x00"]]), identity: dapp)?.code == -32602)
        #expect(policy.check(Self.request("signer_cancelTransaction", ["0x00"]), identity: dapp)?.code == 4100)
        #expect(policy.check(Self.request("signer_lanes"), identity: dapp)?.code == 4100)
        #expect(policy.check(Self.request("signer_lanes"), identity: ops) == nil)
        #expect(policy.check(Self.request("eth_blockNumber"), identity: reader)?.code == 4200)
        #expect(policy.check(Self.send(from: Self.bob), identity: reader) == nil)
        #expect(policy.check(Self.send(from: Self.bob), identity: ops) == nil)
    }

    @Test func aTokenOverItsRateIsToldWhenToRetry() throws {
        var (limited, _) = Self.grant("bot", .user)
        limited.requestsPerSecond = 2
        limited.transactionsPerSecond = 1
        let policy = RolePolicy(grants: [limited])
        let bot = Identity(name: "bot", role: .user)
        #expect(policy.check(Self.send(from: Self.alice), identity: bot) == nil)
        let secondSend = try #require(policy.check(Self.send(from: Self.alice), identity: bot))
        #expect(secondSend.code == -32005 && secondSend.message.contains("signatures/s"))
        // The request bucket held two; the send that was refused took the second.
        let overRequests = try #require(policy.check(Self.request("eth_chainId"), identity: bot))
        #expect(overRequests.code == -32005 && overRequests.message.contains("requests/s"))
        let retry = overRequests.data?["retryAfterSeconds"]?.numberText.flatMap(Double.init)
        #expect(retry.map { $0 > 0 && $0 <= 1 } == true)
    }

    @Test func tokensComeFromTheConfigurationFileAsDigests() throws {
        let (_, digest) = AccessToken.generate()
        var configuration = GatewayConfiguration()
        try ConfigurationLoader.apply(
            yaml: """
                access:
                  anonymous: none
                  tokens:
                    - name: dapp
                      role: user
                      hash: \(digest)
                      addresses: [\(Self.alice.lowercaseHex)]
                      requestsPerSecond: 50
                """, source: "test.yaml", to: &configuration)
        let grant = try #require(configuration.access.tokens.first)
        #expect(grant.name == "dapp" && grant.role == .user && grant.digest == digest)
        #expect(grant.addresses == [Self.alice] && grant.requestsPerSecond == 50)
        #expect(throws: ConfigurationError.self) {
            var other = GatewayConfiguration()
            try ConfigurationLoader.apply(
                yaml: "access:\n  tokens:\n    - {name: x, role: user, hash: sgw_plaintext}", source: "t",
                to: &other)
        }
    }

    @Test func anonymousAccessBeyondLoopbackIsRefusedUnlessForced() throws {
        var configuration = GatewayConfiguration()
        configuration.access.anonymousRole = .user
        configuration.server.host = "0.0.0.0"
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        #expect(throws: ConfigurationError.self) { try GatewayApplication.accessControl(configuration, logger: logger) }
        configuration.access.allowAnonymousBeyondLoopback = true
        #expect(try GatewayApplication.accessControl(configuration, logger: logger).anonymousRole == .user)
        configuration.server.host = "127.0.0.1"
        configuration.access.allowAnonymousBeyondLoopback = false
        #expect(try GatewayApplication.accessControl(configuration, logger: logger).anonymousRole == .user)
    }
}
