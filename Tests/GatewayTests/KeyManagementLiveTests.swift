import Ethereum
import Foundation
import Gateway
import Signers
import TestSupport
import Testing

/// Key management through a running gateway, as an operator does it: the admin token creates keys in SoftHSM and
/// in the keystore (configured as `backends:` entries), imports one, funds them, and a user token then sends from
/// them; a user token may do none of it; a key with a transaction not yet mined is not deleted; a deletion needs
/// the address said twice, and then the address signs no more.
@Suite(.serialized, .tags(.live)) struct KeyManagementLiveTests {
    typealias Answer = AccessLiveTests.Answer

    @Test func anAdminCreatesKeysInSoftHSMAndTheKeystoreAndAUserSendsFromThem() async throws {
        let funder = PrivateKey.random()
        let node = try await Devnode.start(blockTimeMilliseconds: 200, fund: [funder.address.lowercaseHex])
        defer { node.stop() }
        _ = try await SoftHSMToken.shared()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("keystore-admin-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        _ = try KeystoreBackend.write(funder, password: Array("pw".utf8), kdf: .light, to: directory)
        let (userToken, userDigest) = AccessToken.generate()
        let (adminToken, adminDigest) = AccessToken.generate()
        let auditPath = FileManager.default.temporaryDirectory.appendingPathComponent("audit-\(UUID()).jsonl").path
        defer { try? FileManager.default.removeItem(atPath: auditPath) }
        let gateway = try await LiveGateway.start(node: node) { configuration in
            configuration.access.anonymousRole = nil
            configuration.access.tokens = [
                AccessGrant(name: "dapp", role: .user, digest: userDigest),
                AccessGrant(name: "ops", role: .admin, digest: adminDigest),
            ]
            configuration.backends = [
                BackendConfiguration(
                    type: .keystore, name: "files",
                    values: ["directory": directory, "password": "pw", "newKeyKDF": "light"]),
                BackendConfiguration(
                    type: .pkcs11, name: "hsm",
                    values: [
                        "module": SoftHSMToken.modulePath, "tokenLabel": SoftHSMToken.adminLabel,
                        "pin": SoftHSMToken.pin, "keyLabels": "signer-*",
                    ]),
            ]
            configuration.auditPath = auditPath
        }
        let url = gateway.httpURL
        func call(_ token: String, _ method: String, _ params: String) async throws -> Answer {
            try await AccessLiveTests.post(url, token: token, method, params)
        }
        func created(_ answer: Answer) throws -> String {
            let result = try #require(answer.body["result"] as? [String: Any], "\(answer.body)")
            return try #require(result["address"] as? String)
        }

        // A user may not manage keys.
        #expect(try await call(userToken, "signer_createAccount", #"["hsm"]"#).errorCode == 4100)
        // Clear refusals: an unknown backend, an import where the store cannot take one, a key that is not hex.
        let unknown = try await call(adminToken, "signer_createAccount", #"["nowhere"]"#)
        #expect(unknown.errorCode == -32000 && "\(unknown.body)".contains("files, hsm"), "\(unknown.body)")
        let secretKey = PrivateKey.random()
        let hex = secretKey.withUnsafeBytes { String(Hex.encode(Array($0)).dropFirst(2)) }
        let intoHSM = try await call(adminToken, "signer_importAccount", #"["hsm", "\#(hex)"]"#)
        #expect(intoHSM.errorCode == -32000 && "\(intoHSM.body)".contains("does not import"), "\(intoHSM.body)")
        let notHex = try await call(adminToken, "signer_importAccount", #"["files", "0xnothex"]"#)
        #expect(notHex.errorCode == -32602, "\(notHex.body)")

        let inHSM = try created(try await call(adminToken, "signer_createAccount", #"["hsm", {"label": "signer-ops"}]"#))
        let inFiles = try created(try await call(adminToken, "signer_createAccount", #"["files"]"#))
        let imported = try created(try await call(adminToken, "signer_importAccount", #"["files", "\#(hex)"]"#))
        #expect(imported.lowercased() == secretKey.address.lowercaseHex)
        let refreshed = try await call(adminToken, "signer_refreshAccounts", "[]")
        let listed = try #require((refreshed.body["result"] as? [String: Any])?["accounts"] as? [String])
        #expect(Set(listed.map { $0.lowercased() }) == Set([funder.address.lowercaseHex] + [inHSM, inFiles, imported].map { $0.lowercased() }))

        // Funded by the keystore's first key; then the user sends from each new key.
        for address in [inHSM, inFiles, imported] {
            let funding = try await call(
                adminToken, "eth_sendTransaction",
                #"[{"from":"\#(funder.address.lowercaseHex)","to":"\#(address)","value":"0xde0b6b3a7640000"}]"#)
            _ = try #require(funding.body["result"] as? String, "\(funding.body)")
        }
        try await Self.waitUntilMined(node, from: funder.address.lowercaseHex, count: 3)
        // The node now mines nothing that tips less than 1000 gwei: the user's sends stay pending until it is reset.
        _ = try await node.call("devnode_setMinerTip", #"["0xe8d4a51000"]"#)
        for address in [inHSM, inFiles, imported] {
            let send = try await call(
                userToken, "eth_sendTransaction", #"[{"from":"\#(address)","to":"\#(address)","value":"0x1"}]"#)
            _ = try #require(send.body["result"] as? String, "\(send.body)")
        }

        // While its transaction is not yet mined, the HSM key is kept; a deletion without the confirmation is refused.
        let busy = try await call(adminToken, "signer_deleteAccount", #"["\#(inHSM)", {"confirm": "\#(inHSM)"}]"#)
        #expect(busy.errorCode == -32000 && "\(busy.body)".contains("not yet mined"), "\(busy.body)")
        let unconfirmed = try await call(adminToken, "signer_deleteAccount", #"["\#(inHSM)"]"#)
        #expect(unconfirmed.errorCode == -32602, "\(unconfirmed.body)")
        _ = try await node.call("devnode_setMinerTip", #"["0x0"]"#)
        try await Self.waitUntilMined(node, from: inHSM, count: 1)
        // The receipt reaches the journal a moment after the node mined it.
        var deleted = busy
        _ = await eventually(timeout: .seconds(10), every: .milliseconds(50)) {
            deleted = (try? await call(
                adminToken, "signer_deleteAccount", #"["\#(inHSM)", {"confirm": "\#(inHSM)"}]"#)) ?? busy
            return deleted.errorCode == nil
        }
        #expect((deleted.body["result"] as? [String: Any])?["deleted"] as? Bool == true, "\(deleted.body)")
        let afterDeletion = try await call(
            userToken, "eth_sendTransaction", #"[{"from":"\#(inHSM)","to":"\#(inHSM)","value":"0x1"}]"#)
        #expect(afterDeletion.errorCode == 4100, "\(afterDeletion.body)")
        await gateway.stop()

        // The audit log has each key change with its caller; the imported key's text is nowhere.
        let audit = try String(contentsOfFile: auditPath, encoding: .utf8)
        #expect(audit.contains(#""method":"signer_createAccount""#) && audit.contains(#""caller":"ops""#))
        #expect(audit.contains(#""address":"\#(inHSM)""#), "\(audit)")
        #expect(!audit.contains(hex) && !gateway.logs.lines.contains { $0.contains(hex) }, "an imported key leaked")
    }

    /// Waits until the node has mined `count` transactions from `from` (its latest nonce).
    static func waitUntilMined(_ node: Devnode, from: String, count: Int) async throws {
        let mined = await eventually(timeout: .seconds(30), every: .milliseconds(100)) {
            let nonce = (try? await node.call("eth_getTransactionCount", #"["\#(from)", "latest"]"#)) as? String
            return nonce.flatMap { UInt64($0.dropFirst(2), radix: 16) }.map { $0 >= count } ?? false
        }
        guard mined else { throw TestSupportError("\(from) did not get \(count) transactions mined") }
    }
}
