import Ethereum

/// A backend whose keys the gateway's administrator may create and delete (`signer_createAccount`,
/// `signer_deleteAccount`), and for some, import. No key is ever exported: a created key is generated inside its
/// store (the HSM, KMS, Key Vault, Vault) and an imported one goes in and never comes back out.
public protocol KeyManagingBackend: KeyBackend {
    /// Generates a key in the store and returns its account. `label` names it where the store has names (a PKCS#11
    /// `CKA_LABEL`, a Key Vault key name, a KMS description); `nil` lets the backend choose one.
    func createAccount(label: String?) async throws(SignerError) -> Account
    /// Puts an existing private key into the store. Only stores that accept keys do (the keystore, Vault's ethsign);
    /// an HSM or a cloud KMS would need wrapping ceremonies that belong to their own tools.
    func importAccount(_ key: PrivateKey, label: String?) async throws(SignerError) -> Account
    /// Deletes the key (or schedules its deletion, where the store insists on a waiting period). After this the
    /// account no longer signs.
    func deleteAccount(_ account: Account) async throws(SignerError)
}

extension KeyManagingBackend {
    public func importAccount(_ key: PrivateKey, label: String?) async throws(SignerError) -> Account {
        throw .keyManagement(
            "\(name) does not import keys: create one in it with signer_createAccount, or import into a keystore "
                + "or Vault backend")
    }
}
