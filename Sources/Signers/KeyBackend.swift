import Ethereum

/// An account a backend holds: the address, its public key (to recover v from bare r,s), and the backend's own
/// name for the key (a file, a KMS key id, a PKCS#11 label).
public struct Account: Sendable, Hashable {
    public let address: Address
    public let publicKey: PublicKey
    public let backend: String
    public let keyReference: String

    public init(publicKey: PublicKey, backend: String, keyReference: String) {
        self.address = publicKey.address
        self.publicKey = publicKey
        self.backend = backend
        self.keyReference = keyReference
    }
}

/// A place keys live and sign without leaving: an HSM, a cloud KMS, Vault, encrypted files.
///
/// `sign` receives a 32-byte digest (transaction signing hash, EIP-191 or EIP-712 hash) and returns a canonical
/// signature: low s, recovery id found (REFERENCE: backends return bare r,s, often with high s). Calls may run
/// concurrently for the same account: remote backends take 5–50 ms and the pipeline keeps them busy.
public protocol KeyBackend: Sendable {
    var name: String { get }
    func accounts() async throws(SignerError) -> [Account]
    func sign(digest: Bytes32, for account: Account) async throws(SignerError) -> Signature
    func signNow(digest: Bytes32, for account: Account) throws(SignerError) -> Signature?
}

extension KeyBackend {
    /// A signature made right now on the calling thread, for backends that hold the key in this process (no I/O):
    /// the gateway then answers without leaving the connection's event loop. `nil` means "ask `sign`".
    public func signNow(digest: Bytes32, for account: Account) throws(SignerError) -> Signature? { nil }
}
