import Ethereum
import Logging
import Signers

/// What key management must do on every backend that offers it, checked through the wallet (the path
/// `signer_createAccount` and `signer_deleteAccount` take) against the backend's real server:
///
/// - a created key signs at once, and a new backend instance over the same store lists it (the store holds it, not
///   this process);
/// - an imported key keeps its address; importing it twice is refused; a backend that cannot import says so;
/// - a deleted key is gone from the wallet at once and from a new instance's listing, and no longer signs.
public struct KeyManagementConformance: Sendable {
    public let make: @Sendable () -> any KeyManagingBackend
    public let chainID: UInt64

    public init(chainID: UInt64 = 1, _ make: @escaping @Sendable () -> any KeyManagingBackend) {
        self.make = make
        self.chainID = chainID
    }

    static let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    /// The whole round; returns the created account (already deleted again).
    @discardableResult
    public func createsSignsAndDeletes(label: String? = nil, imports: Bool) async throws -> Account {
        let backend = make()
        let wallet = Wallet(backends: [backend], logger: Self.logger)
        await wallet.refresh()
        let before = Set(wallet.addresses)

        let created = try await wallet.createAccount(backend: backend.name, label: label)
        guard !before.contains(created.address), Set(wallet.addresses) == before.union([created.address]) else {
            throw TestSupportError("\(backend.name): the created account is not (only) added to the wallet")
        }
        try await signs(wallet, created.address)
        try await listedByANewInstance(are: before.union([created.address]))

        var kept = before
        if imports {
            let key = PrivateKey.random()
            let imported = try await wallet.importAccount(key, backend: backend.name, label: nil)
            guard imported.address == key.address else {
                throw TestSupportError("\(backend.name) imported \(key.address) as \(imported.address)")
            }
            try await signs(wallet, imported.address)
            try await refuses("importing the same key again") {
                try await wallet.importAccount(key, backend: backend.name, label: nil)
            }
            kept.insert(imported.address)
        } else {
            try await refuses("an import") {
                try await wallet.importAccount(PrivateKey.random(), backend: backend.name, label: nil)
            }
        }

        try await wallet.delete(wallet.withdraw(created.address))
        guard Set(wallet.addresses) == kept else {
            throw TestSupportError("\(backend.name): after the deletion the wallet holds \(wallet.addresses)")
        }
        try await listedByANewInstance(are: kept)
        do {
            _ = try await wallet.sign(transaction: transaction(), from: created.address)
            throw TestSupportError("\(backend.name) still signs for the deleted \(created.address)")
        } catch let error as SignerError {
            guard error.label == "unknown_account" else { throw error }
        }
        return created
    }

    /// A legacy transaction (every backend signs those) signed through the wallet, which recovers it to `from`.
    private func signs(_ wallet: Wallet, _ from: Address) async throws {
        let signed = try await wallet.sign(transaction: transaction(), from: from)
        guard try signed.sender() == from else { throw TestSupportError("a signature for \(from) recovers elsewhere") }
    }

    private func transaction() -> Transaction {
        Transaction.legacy(
            chainId: chainID, nonce: 0, gasPrice: UInt256(1_000_000_000), gas: 21_000, to: PrivateKey.random().address,
            value: UInt256(1), data: [])
    }

    private func listedByANewInstance(are expected: Set<Address>) async throws {
        let listed = Set(try await make().accounts().map(\.address))
        guard listed == expected else {
            throw TestSupportError(
                "a new instance lists \(listed.map(\.checksummed).sorted()), expected "
                    + "\(expected.map(\.checksummed).sorted())")
        }
    }

    private func refuses(_ what: String, _ body: () async throws -> Account) async throws {
        do {
            let account = try await body()
            throw TestSupportError("\(what) was accepted: \(account.address)")
        } catch let error as SignerError {
            guard error.label == "key_management" else {
                throw TestSupportError("\(what) was refused as \(error.label), not key_management: \(error)")
            }
        }
    }
}
