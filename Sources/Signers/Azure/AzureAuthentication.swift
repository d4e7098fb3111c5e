import Signers

/// How the gateway proves itself to Key Vault: an access token for the vault's resource from Microsoft Entra ID.
public enum AzureAuthentication: Sendable, Hashable {
    /// An app registration and its client secret (the OAuth 2.0 client-credentials grant at
    /// `{authorityHost}/{tenantID}/oauth2/v2.0/token`). Without a tenant id, the vault's own challenge names it (the
    /// first call goes without a token, as Microsoft's SDK does it).
    case clientSecret(tenantID: String?, clientID: String, secret: SecretReference, authorityHost: String)
    /// The managed identity of the VM, scale set or container the gateway runs on (the IMDS token endpoint);
    /// `clientID` picks a user-assigned identity, `nil` the system-assigned one.
    case managedIdentity(endpoint: String, clientID: String?)

    public static let defaultAuthorityHost = "https://login.microsoftonline.com"
    public static let defaultIMDSEndpoint = "http://169.254.169.254/metadata/identity/oauth2/token"

    public static func clientSecret(
        tenantID: String?, clientID: String, secret: SecretReference
    ) -> AzureAuthentication {
        .clientSecret(tenantID: tenantID, clientID: clientID, secret: secret, authorityHost: defaultAuthorityHost)
    }

    public static func managedIdentity(clientID: String? = nil) -> AzureAuthentication {
        .managedIdentity(endpoint: defaultIMDSEndpoint, clientID: clientID)
    }
}
