import Signers

/// How the gateway logs in to Vault.
public enum VaultAuthentication: Sendable, Hashable {
    /// A token given by the operator (by reference). It is renewed before it expires while Vault allows; once it
    /// cannot be, only the operator can give a new one.
    case token(SecretReference)
    /// AppRole (`POST /v1/auth/{mount}/login {role_id, secret_id}`): the token it gets is renewed, and replaced by a
    /// new login when renewal is refused, not allowed, or capped by the role's max TTL.
    case appRole(roleID: SecretReference, secretID: SecretReference, mount: String)

    public static func appRole(roleID: SecretReference, secretID: SecretReference) -> VaultAuthentication {
        .appRole(roleID: roleID, secretID: secretID, mount: "approle")
    }
}
