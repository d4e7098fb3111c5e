import Logging
import Signers

/// Configuration → key backends: the one place where a configured backend becomes a `KeyBackend`. A new backend
/// type is a folder under `Sources/Signers/` and one case here.
enum KeyBackendFactory {
    static func backends(
        for wallet: GatewayConfiguration.WalletSettings, logger: Logger
    ) throws(ConfigurationError)
        -> [any KeyBackend]
    {
        var backends: [any KeyBackend] = []
        if let directory = wallet.keystoreDirectory {
            guard let password = wallet.keystorePassword else {
                throw ConfigurationError("keystore.password: required with keystore.directory (env:NAME or file:/path)")
            }
            backends.append(KeystoreBackend(directory: directory, password: SecretReference(password), logger: logger))
        }
        return backends
    }
}
