import Ethereum
import Foundation
import Synchronization

/// A SoftHSM2 token for this test process: the PKCS#11 backend's real module (`/usr/lib/softhsm/libsofthsm2.so`
/// from Debian `softhsm2`), a token directory of its own, and keys generated inside the token by `pkcs11-tool`
/// (Debian `opensc`), as an operator would on a CloudHSM.
///
/// One per process: SoftHSM reads `SOFTHSM2_CONF` once, when the module is first initialised, and the module stays
/// loaded (dlopen) for the life of the process; so the token and all its keys exist before any test loads it.
public struct SoftHSMToken: Sendable {
    public struct Key: Sendable {
        public let label: String
        public let id: String
        /// 04 ‖ X ‖ Y as `pkcs11-tool` printed it at generation (hex, no 0x).
        public let publicPoint: String

        /// keccak256(X ‖ Y)[12...], lower-case hex with 0x: the account's address, derived here independently.
        public var address: String {
            let point = (0..<(publicPoint.count / 2)).map { index in
                UInt8(publicPoint.dropFirst(2 * index).prefix(2), radix: 16)!
            }
            return "0x" + Keccak256.hash(point.dropFirst()).bytes.suffix(20).map { String(format: "%02x", $0) }.joined()
        }
    }

    public static let modulePath = "/usr/lib/softhsm/libsofthsm2.so"
    public static let label = "gateway-tests"
    public static let pin = "1234"
    public static let soPin = "12345678"
    /// secp256k1 keys labelled `signer-0` … `signer-3` (ids 01 … 04) are accounts; `spare` is secp256k1 too but
    /// outside the `signer-*` pattern; `p256` is on the wrong curve and must never be listed.
    public static let signerCount = 4

    /// A token of its own for the test that closes every session under a backend (an HSM that lost them), and one
    /// with no keys for the wrong-PIN test: PKCS#11 login state is per application and token, so on a token another
    /// test is logged in to, any PIN is let through (`CKR_USER_ALREADY_LOGGED_IN`).
    /// No label is a prefix of another: `pkcs11-tool --token-label` takes the first token whose label starts so.
    public static let restartLabel = "restart-tests"
    public static let pinTestLabel = "pin-tests"
    /// The gateway's end-to-end tests sign on a token of their own, beside the backend suite's.
    public static let liveLabel = "live-tests"
    /// Empty tokens for key management: the backend suite's, and the gateway's end-to-end test's.
    public static let keysLabel = "keys-tests"
    public static let adminLabel = "admin-tests"

    public let directory: String
    public let signers: [Key]
    public let spare: Key
    /// `signer-0`, `signer-1` on the restart token.
    public let restartSigners: [Key]
    /// `signer-0` … `signer-2` on the live token.
    public let liveSigners: [Key]

    private static let shared = Mutex<Task<SoftHSMToken, any Error>?>(nil)

    public static func shared() async throws -> SoftHSMToken {
        let task = shared.withLock { task in
            if let task { return task }
            let created = Task { try await create() }
            task = created
            return created
        }
        return try await task.value
    }

    private static func create() async throws -> SoftHSMToken {
        guard FileManager.default.fileExists(atPath: modulePath) else {
            throw TestSupportError("\(modulePath) is missing: run Tools/bootstrap (apt-get install softhsm2 opensc)")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "signer-gateway-softhsm-\(getpid())")
        try? FileManager.default.removeItem(at: directory)
        removeLeftovers(in: FileManager.default.temporaryDirectory)
        let tokens = directory.appendingPathComponent("tokens")
        try FileManager.default.createDirectory(at: tokens, withIntermediateDirectories: true)
        let configuration = directory.appendingPathComponent("softhsm2.conf")
        try "directories.tokendir = \(tokens.path)\nobjectstore.backend = file\nlog.level = ERROR\n".write(
            to: configuration, atomically: true, encoding: .utf8)
        // Before any module load in this process (the gateway in-process reads it through the module).
        setenv("SOFTHSM2_CONF", configuration.path, 1)
        let environment = ["SOFTHSM2_CONF": configuration.path]

        for token in [label, restartLabel, pinTestLabel, liveLabel, keysLabel, adminLabel] {
            try await run(
                "softhsm2-util",
                ["--init-token", "--free", "--label", token, "--so-pin", soPin, "--pin", pin], environment)
        }
        var signers: [Key] = []
        for index in 0..<signerCount {
            signers.append(
                try await generate(label: "signer-\(index)", id: String(format: "%02x", index + 1), environment))
        }
        let spare = try await generate(label: "spare", id: "a0", environment)
        _ = try await generate(label: "p256", id: "b0", curve: "prime256v1", environment)
        var restartSigners: [Key] = []
        for index in 0..<2 {
            restartSigners.append(
                try await generate(
                    label: "signer-\(index)", id: String(format: "%02x", index + 1), token: restartLabel, environment))
        }
        var liveSigners: [Key] = []
        for index in 0..<3 {
            liveSigners.append(
                try await generate(
                    label: "signer-\(index)", id: String(format: "%02x", index + 1), token: liveLabel, environment))
        }
        return SoftHSMToken(
            directory: directory.path, signers: signers, spare: spare, restartSigners: restartSigners,
            liveSigners: liveSigners)
    }

    /// Token directories of earlier test processes that have exited (a process cannot remove its own at exit:
    /// the module keeps its files open until then).
    private static func removeLeftovers(in temporary: URL) {
        let prefix = "signer-gateway-softhsm-"
        for name in (try? FileManager.default.contentsOfDirectory(atPath: temporary.path)) ?? []
        where name.hasPrefix(prefix) {
            guard let pid = Int32(name.dropFirst(prefix.count)), pid != getpid() else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH {
                try? FileManager.default.removeItem(at: temporary.appendingPathComponent(name))
            }
        }
    }

    private static func generate(
        label: String, id: String, curve: String = "secp256k1", token: String = Self.label,
        _ environment: [String: String]
    ) async throws -> Key {
        let output = try await run(
            "pkcs11-tool",
            [
                "--module", modulePath, "--token-label", token, "--login", "--pin", pin, "--keypairgen",
                "--key-type", "EC:\(curve)", "--label", label, "--id", id,
            ], environment)
        // "  EC_POINT:   044104…" — the DER OCTET STRING (04 41) around 04 ‖ X ‖ Y.
        guard let line = output.first(where: { $0.contains("EC_POINT:") }),
            let der = line.split(separator: " ").last, der.hasPrefix("04")
        else { throw TestSupportError("pkcs11-tool printed no EC_POINT for \(label):\n" + output.joined(separator: "\n")) }
        return Key(label: label, id: id, publicPoint: String(der.dropFirst(4)))
    }

    /// `C_CloseAllSessions` on a token, in the module instance the backends use: as when the HSM lost every session
    /// (CloudHSM: an HSM of the cluster replaced, the client reconnected), the backend's handles are all invalid.
    public func closeAllSessions(token: String) throws {
        guard let module = dlopen(Self.modulePath, RTLD_NOW | RTLD_LOCAL),
            let getSlotList = dlsym(module, "C_GetSlotList"), let getTokenInfo = dlsym(module, "C_GetTokenInfo"),
            let closeAll = dlsym(module, "C_CloseAllSessions")
        else { throw TestSupportError("cannot load \(Self.modulePath)") }
        typealias SlotList = @convention(c) (UInt8, UnsafeMutablePointer<UInt>?, UnsafeMutablePointer<UInt>) -> UInt
        typealias TokenInfo = @convention(c) (UInt, UnsafeMutableRawPointer) -> UInt
        typealias CloseAll = @convention(c) (UInt) -> UInt
        var count: UInt = 16
        var slots = [UInt](repeating: 0, count: 16)
        guard unsafeBitCast(getSlotList, to: SlotList.self)(1, &slots, &count) == 0 else {
            throw TestSupportError("C_GetSlotList failed")
        }
        // CK_TOKEN_INFO begins with the 32-byte, space-padded label; the whole struct is under 256 bytes.
        var info = [UInt8](repeating: 0, count: 512)
        for slot in slots.prefix(Int(count)) {
            guard unsafeBitCast(getTokenInfo, to: TokenInfo.self)(slot, &info) == 0 else { continue }
            let label = String(decoding: info.prefix(32), as: UTF8.self).trimmingCharacters(in: .whitespaces)
            guard label == token else { continue }
            let code = unsafeBitCast(closeAll, to: CloseAll.self)(slot)
            guard code == 0 else { throw TestSupportError("C_CloseAllSessions returned 0x\(String(code, radix: 16))") }
            return
        }
        throw TestSupportError("no token labelled \(token)")
    }

    @discardableResult
    private static func run(_ tool: String, _ arguments: [String], _ environment: [String: String]) async throws
        -> [String]
    {
        try await ManagedProcess.output(
            name: tool, executable: "/usr/bin/\(tool)", arguments: arguments, environment: environment)
    }
}
