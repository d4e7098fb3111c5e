import Ethereum
import Signers

/// What every key backend must do, checked against its real server (SoftHSM for PKCS#11, moto for AWS KMS, files
/// for the keystore): one suite, so that a new backend is held to the same rules as the first.
///
/// - it lists exactly the accounts it holds, each address derived from the key the server holds;
/// - many random digests signed at once all come back low-s and recover to their account (REFERENCE §4);
/// - a key it does not hold is a clear error, not a signature and not a hang;
/// - while its server is down it fails with retryable errors only (so the pipeline burns no nonce and tries again),
///   and it signs again once the server is back, without a restart.
public struct BackendConformance: Sendable {
    public let backend: any KeyBackend

    public init(_ backend: any KeyBackend) { self.backend = backend }

    /// The rules that need no outage, in order: exactly `expected` listed, 200 concurrent signatures canonical and
    /// recovering, an unknown key refused as `unknown_account`. Returns the accounts for further checks.
    @discardableResult
    public func holds(_ expected: Set<Address>) async throws -> [Account] {
        let listed = try await accounts(are: expected)
        try await signsConcurrently(listed, count: 200)
        let unknown = try await refusesAnUnknownKey()
        guard unknown.label == "unknown_account" else {
            throw TestSupportError("\(backend.name) refused an unknown key as \(unknown.label): \(unknown)")
        }
        return listed
    }

    /// The suite for `backend`, and its accounts checked to be exactly `expected`: how most backend tests begin.
    public static func listing(
        _ backend: any KeyBackend, are expected: Set<Address>
    ) async throws -> (BackendConformance, [Account]) {
        let conformance = BackendConformance(backend)
        return (conformance, try await conformance.accounts(are: expected))
    }

    /// The accounts, checked to be exactly `expected` and named after this backend.
    @discardableResult
    public func accounts(are expected: Set<Address>) async throws -> [Account] {
        let accounts = try await backend.accounts()
        let listed = Set(accounts.map(\.address))
        guard listed == expected, listed.count == accounts.count else {
            throw TestSupportError(
                "\(backend.name) listed \(accounts.map(\.address.checksummed).sorted()), expected "
                    + "\(expected.map(\.checksummed).sorted())")
        }
        for account in accounts where account.backend != backend.name {
            throw TestSupportError("\(account.address) names backend \(account.backend), not \(backend.name)")
        }
        return accounts
    }

    /// `count` random digests over `accounts`, all in flight at once; each signature must be canonical and recover to
    /// its account.
    public func signsConcurrently(_ accounts: [Account], count: Int = 200, seed: UInt64 = 1) async throws {
        var generator = SeededGenerator(seed: seed)
        let work = (0..<count).map { index in
            (accounts[index % accounts.count], Bytes32((0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) })!)
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (account, digest) in work {
                group.addTask { try await checkSignature(for: account, digest: digest) }
            }
            try await group.waitForAll()
        }
    }

    /// One signature, checked: low s, and recovering to the account's address.
    public func checkSignature(for account: Account, digest: Bytes32) async throws {
        let signature = try await backend.sign(digest: digest, for: account)
        guard signature.s <= Secp256k1.halfOrder else {
            throw TestSupportError("\(backend.name): high-s signature for \(account.address)")
        }
        let recovered = try Secp256k1.recoverAddress(digest: digest, signature: signature)
        guard recovered == account.address else {
            throw TestSupportError("\(backend.name): signature for \(account.address) recovers to \(recovered)")
        }
    }

    /// Listing fails as a configuration error (the operator's to fix, so the gateway stops at start) whose message
    /// names `subject`.
    @discardableResult
    public static func refusesToList(_ backend: any KeyBackend, naming subject: String) async throws -> SignerError {
        do {
            let accounts = try await backend.accounts()
            throw TestSupportError("\(backend.name) listed \(accounts.count) accounts instead of refusing")
        } catch let error as SignerError {
            guard error.isConfiguration, error.description.contains(subject) else {
                throw TestSupportError(
                    "\(backend.name): expected a configuration error naming \(subject), got \(error)")
            }
            return error
        }
    }

    /// An account with a fresh key that this backend has never seen: signing for it must fail with an error.
    public func refusesAnUnknownKey() async throws -> SignerError {
        let stranger = PrivateKey.random()
        let account = Account(publicKey: stranger.publicKey, backend: backend.name, keyReference: "not-held")
        do {
            let signature = try await backend.sign(digest: Bytes32(Array(repeating: 7, count: 32))!, for: account)
            throw TestSupportError("\(backend.name) signed for a key it does not hold: \(signature)")
        } catch let error as SignerError {
            return error
        }
    }

    /// Signatures asked for while the server is down fail, and only with retryable errors; once `recover` has run,
    /// every account signs again.
    public func survivesAnOutage(
        _ accounts: [Account], during outage: () async throws -> Void, recover: () async throws -> Void,
        attempts: Int = 8
    ) async throws {
        try await outage()
        var failures: [SignerError] = []
        do {
            try await withThrowingTaskGroup(of: SignerError?.self) { group in
                for index in 0..<attempts {
                    let account = accounts[index % accounts.count]
                    group.addTask {
                        do {
                            _ = try await backend.sign(digest: Bytes32(Array(repeating: UInt8(index), count: 32))!, for: account)
                            return nil
                        } catch let error as SignerError {
                            return error
                        }
                    }
                }
                for try await failure in group { if let failure { failures.append(failure) } }
            }
        } catch {
            try await recover()
            throw error
        }
        try await recover()
        guard failures.count == attempts else {
            throw TestSupportError(
                "\(backend.name) signed \(attempts - failures.count) of \(attempts) digests with its server down")
        }
        if let permanent = failures.first(where: \.isPermanent) {
            throw TestSupportError("\(backend.name) failed permanently during an outage: \(permanent)")
        }
        try await signsConcurrently(accounts, count: 4 * accounts.count, seed: 99)
    }
}
