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

    static func transfer(
        to: Address, value: UInt64, data: [UInt8] = [], chain: UInt64 = 1337, maxFee: UInt64 = 2_000_000_000
    ) throws -> Transaction {
        try Transaction(
            type: .dynamicFee, chainId: chain, nonce: 0,
            fees: .dynamic(maxPriorityFeePerGas: 1_000_000_000, maxFeePerGas: UInt256(maxFee)), gas: 60_000,
            to: to, value: UInt256(value), data: data)
    }

    @Test func eachPolicyRuleDeniesByNameAndTheOthersLetThrough() throws {
        let token = Identity(name: "dapp", role: .user)
        let stranger = PrivateKey.random().address
        let transferSelector: [UInt8] = [0xa9, 0x05, 0x9c, 0xbb]
        var limits = SigningPolicy(name: "limits")
        limits.tokens = ["dapp"]
        limits.maximumValuePerTransaction = UInt256(100)
        limits.recipients = [.init(address: Self.alice), .init(address: Self.bob, selector: transferSelector)]
        limits.chainIDs = [1337]
        limits.maximumFeePerGas = UInt256(3_000_000_000)
        let policies = SigningPolicies([limits])
        func denial(_ transaction: Transaction, as identity: Identity = token) -> String? {
            policies.approve(transaction, from: Self.alice, identity: identity).map { "\($0.code) \($0.message)" }
        }
        #expect(denial(try Self.transfer(to: Self.alice, value: 100)) == nil)
        #expect(denial(try Self.transfer(to: Self.alice, value: 101))?.contains("4001 denied by policy limits (maxValuePerTransaction)") == true)
        #expect(denial(try Self.transfer(to: stranger, value: 1))?.contains("(recipients)") == true)
        #expect(denial(try Self.transfer(to: Self.bob, value: 0, data: transferSelector + [0, 1])) == nil)
        #expect(denial(try Self.transfer(to: Self.bob, value: 0, data: [1, 2, 3, 4]))?.contains("(recipients)") == true)
        #expect(denial(try Self.transfer(to: Self.alice, value: 1, chain: 1))?.contains("(chainIds)") == true)
        #expect(denial(try Self.transfer(to: Self.alice, value: 1, maxFee: 4_000_000_000))?.contains("(maxFeePerGas)") == true)
        // Another token is not bound by this policy.
        #expect(denial(try Self.transfer(to: stranger, value: 1_000), as: Identity(name: "ops", role: .admin)) == nil)
    }

    @Test func aDailyCapCountsWhatItLetThroughOver24Hours() throws {
        var daily = SigningPolicy(name: "daily")
        daily.maximumValuePerDay = UInt256(10)
        let policies = SigningPolicies([daily])
        let caller = Identity(name: "dapp", role: .user)
        let start = ContinuousClock.now
        #expect(policies.approve(try Self.transfer(to: Self.bob, value: 6), from: Self.alice, identity: caller, now: start) == nil)
        let over = policies.approve(
            try Self.transfer(to: Self.bob, value: 5), from: Self.alice, identity: caller, now: start + .seconds(60))
        #expect(over?.code == 4001 && over?.message.contains("(maxValuePerDay)") == true)
        // Another address has its own allowance; a day later the first one's is back.
        #expect(policies.approve(try Self.transfer(to: Self.bob, value: 10), from: Self.bob, identity: caller, now: start) == nil)
        #expect(
            policies.approve(
                try Self.transfer(to: Self.bob, value: 10), from: Self.alice, identity: caller,
                now: start + .seconds(86_401)) == nil)
    }

    @Test func typedDataIsSignedOnlyForListedContracts() throws {
        var permits = SigningPolicy(name: "permits")
        permits.typedDataContracts = [Self.bob]
        let policy = RolePolicy(grants: [], signingPolicies: SigningPolicies([permits]))
        let caller = Identity(name: "dapp", role: .user)
        func typed(_ contract: Address) -> RPCRequest {
            let domain: JSONValue = ["name": "Permit", "chainId": "0x539", "verifyingContract": .string(contract.lowercaseHex)]
            let text = String(decoding: JSONWriter.bytes(["domain": domain, "primaryType": "Permit"]), as: UTF8.self)
            return Self.request("eth_signTypedData_v4", [.string(Self.alice.lowercaseHex), .string(text)])
        }
        #expect(policy.check(typed(Self.bob), identity: caller) == nil)
        let denied = policy.check(typed(Self.alice), identity: caller)
        #expect(denied?.code == 4001 && denied?.message.contains("(typedDataContracts)") == true)
    }

    @Test func policiesComeFromTheConfigurationFile() throws {
        var configuration = GatewayConfiguration()
        try ConfigurationLoader.apply(
            yaml: """
                access:
                  policies:
                    - name: hot
                      tokens: [dapp]
                      maxValuePerTransaction: "1000000000000000000"
                      maxValuePerDay: 0x1bc16d674ec80000
                      recipients: [\(Self.alice.lowercaseHex), "\(Self.bob.lowercaseHex):0xa9059cbb"]
                      chainIds: [1, 1337]
                """, source: "test.yaml", to: &configuration)
        let policy = try #require(configuration.access.policies.first)
        #expect(policy.maximumValuePerTransaction == UInt256(1_000_000_000_000_000_000))
        #expect(policy.maximumValuePerDay == UInt256(2_000_000_000_000_000_000))
        #expect(policy.recipients?.last?.selector == [0xa9, 0x05, 0x9c, 0xbb] && policy.chainIDs == [1, 1337])
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

extension AccessTests {
    /// Concurrent decisions share writes and fsyncs; every one is a whole line once its `done` has run.
    @Test func auditLinesWrittenConcurrentlyAreWholeAndAllThere() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("audit-\(UUID()).jsonl").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let log = try AuditLog(path: path)
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<300 {
                group.addTask {
                    await withCheckedContinuation { continuation in
                        log.append(["n": .number(index), "caller": "x"]) { _ in continuation.resume() }
                    }
                }
            }
        }
        await log.flush()
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        let numbers = try lines.map { try JSONParser.parse(String($0))["n"]?.numberText.flatMap(Int.init) ?? -1 }
        #expect(Set(numbers) == Set(0..<300) && numbers.count == 300)
    }
}
