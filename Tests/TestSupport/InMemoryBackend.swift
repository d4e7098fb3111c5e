import Ethereum
import Signers
import Synchronization

/// A backend whose keys live in this process and whose behaviour tests control: latency per signature and
/// failures on demand. It is what a remote HSM looks like to the pipeline (slow, concurrent, sometimes failing)
/// without the network.
public final class InMemoryBackend: KeyBackend {
    public typealias Fault = @Sendable (_ account: Account, _ signatureNumber: Int) -> SignerError?

    public let name: String
    private let keys: [Address: (key: PrivateKey, account: Account)]
    private let latency: Duration
    private let fault: Fault?
    private let signatures = Atomic<Int>(0)

    /// Signs with this key instead of the account's (a misconfigured key reference, as a test would have it).
    private let impostor: PrivateKey?

    /// `.transaction`: signs whole transactions only, as the Vault ethsign plugin does; `tamper` then changes what it
    /// signs (a backend that must not be trusted with the fields).
    public let signingForm: SigningForm
    public typealias Tamper = @Sendable (Transaction) -> Transaction
    private let tamper: Tamper?

    public init(
        name: String = "memory", keys: [PrivateKey], latency: Duration = .zero, fault: Fault? = nil,
        impostor: PrivateKey? = nil, signingForm: SigningForm = .digest, tamper: Tamper? = nil
    ) {
        self.impostor = impostor
        self.signingForm = signingForm
        self.tamper = tamper
        self.name = name
        var table: [Address: (key: PrivateKey, account: Account)] = [:]
        for (index, key) in keys.enumerated() {
            let account = Account(publicKey: key.publicKey, backend: name, keyReference: "key-\(index)")
            table[account.address] = (key, account)
        }
        self.keys = table
        self.latency = latency
        self.fault = fault
    }

    public var signatureCount: Int { signatures.load(ordering: .relaxed) }

    public func accounts() async throws(SignerError) -> [Account] {
        keys.values.map(\.account).sorted { $0.address < $1.address }
    }

    /// Without latency or faults to simulate, it signs on the caller's thread like the keystore does.
    public func signNow(digest: Bytes32, for account: Account) throws(SignerError) -> Signature? {
        guard latency == .zero, fault == nil, impostor == nil else { return nil }
        signatures.wrappingAdd(1, ordering: .relaxed)
        guard let key = keys[account.address]?.key else { throw .unknownAccount(account.address.checksummed) }
        return Secp256k1.sign(digest: digest, with: key)
    }

    public func sign(digest: Bytes32, for account: Account) async throws(SignerError) -> Signature {
        let number = signatures.wrappingAdd(1, ordering: .relaxed).oldValue + 1
        if latency > .zero { try? await Task.sleep(for: latency) }
        if let error = fault?(account, number) { throw error }
        guard let key = impostor ?? keys[account.address]?.key else {
            throw .unknownAccount(account.address.checksummed)
        }
        return Secp256k1.sign(digest: digest, with: key)
    }

    public func sign(transaction: Transaction, for account: Account) async throws(SignerError) -> [UInt8] {
        guard signingForm == .transaction else { throw .rejected("\(name) signs digests") }
        let number = signatures.wrappingAdd(1, ordering: .relaxed).oldValue + 1
        if latency > .zero { try? await Task.sleep(for: latency) }
        if let error = fault?(account, number) { throw error }
        guard let key = impostor ?? keys[account.address]?.key else {
            throw .unknownAccount(account.address.checksummed)
        }
        return (tamper?(transaction) ?? transaction).signed(with: key).raw
    }
}
