import Ethereum

/// An account a backend holds: the address, its public key (to recover v from bare r,s), and the backend's own
/// name for the key (a file, a KMS key id, a PKCS#11 label).
///
/// The public key is `nil` only for a backend that signs whole transactions and names nothing but addresses (Vault's
/// ethsign plugin): nothing needs the key there, because every signature is checked by recovering it to `address`
/// (`Wallet.verify`), and inventing a key (by signing a probe transaction) would leave a signed transaction behind.
/// Backends that sign digests always have one: they find v by comparing recovered keys to it.
public struct Account: Sendable, Hashable {
    public let address: Address
    public let publicKey: PublicKey?
    public let backend: String
    public let keyReference: String

    public init(publicKey: PublicKey, backend: String, keyReference: String) {
        self.init(address: publicKey.address, publicKey: publicKey, backend: backend, keyReference: keyReference)
    }

    /// An account known only by its address (a whole-transaction signer that never shows its key).
    public init(address: Address, backend: String, keyReference: String) {
        self.init(address: address, publicKey: nil, backend: backend, keyReference: keyReference)
    }

    private init(address: Address, publicKey: PublicKey?, backend: String, keyReference: String) {
        (self.address, self.publicKey, self.backend, self.keyReference) = (address, publicKey, backend, keyReference)
    }

    /// The key a digest signer needs to find v; its absence is the backend's bug, said as an error, not a crash.
    public func requirePublicKey() throws(SignerError) -> PublicKey {
        guard let publicKey else {
            throw .invalidPublicKey("\(backend) has no public key for \(address.checksummed) (\(keyReference))")
        }
        return publicKey
    }
}

/// What a backend signs. Most sign any 32-byte digest (a transaction's signing hash, an EIP-191 or EIP-712 hash);
/// some sign only whole transactions, which they encode themselves (the Vault ethsign plugin): the gateway then hands
/// them the fields and checks what comes back (`Wallet.sign(transaction:from:)`), and they cannot sign messages.
public enum SigningForm: Sendable, Hashable {
    case digest
    case transaction
}

/// A place keys live and sign without leaving: an HSM, a cloud KMS, Vault, encrypted files.
///
/// `sign(digest:)` receives a 32-byte digest and returns a canonical signature: low s, recovery id found (REFERENCE:
/// backends return bare r,s, often with high s). Calls may run concurrently for the same account: remote backends
/// take 5–50 ms and the pipeline keeps them busy.
public protocol KeyBackend: Sendable {
    var name: String { get }
    var signingForm: SigningForm { get }
    /// The transaction envelopes it can sign; the filler chooses among them (`TransactionSupport`).
    var transactionSupport: TransactionSupport { get }
    func accounts() async throws(SignerError) -> [Account]
    func sign(digest: Bytes32, for account: Account) async throws(SignerError) -> Signature
    func signNow(digest: Bytes32, for account: Account) throws(SignerError) -> Signature?
    /// The signed transaction's raw bytes (for `signingForm == .transaction`). They are decoded and checked against
    /// `transaction` and the account before anything is sent.
    func sign(transaction: Transaction, for account: Account) async throws(SignerError) -> [UInt8]
}

extension KeyBackend {
    public var signingForm: SigningForm { .digest }
    public var transactionSupport: TransactionSupport { .all }

    public func sign(transaction: Transaction, for account: Account) async throws(SignerError) -> [UInt8] {
        throw .rejected("\(name) signs digests; the gateway encodes transactions for it")
    }

    /// A signature made right now on the calling thread, for backends that hold the key in this process (no I/O):
    /// the gateway then answers without leaving the connection's event loop. `nil` means "ask `sign`".
    public func signNow(digest: Bytes32, for account: Account) throws(SignerError) -> Signature? { nil }
}
