import NIOSSL
import Signers

/// Vault's TLS settings as files: a CA bundle to trust instead of the system's, and a client certificate and key for
/// listeners that require one (`tls_require_and_verify_client_cert`). Loaded once, at the first call, so that a
/// missing or malformed file is a configuration error naming it.
public struct VaultTLS: Sendable, Hashable {
    public var caFile: String?
    public var clientCertificateFile: String?
    public var clientKeyFile: String?

    public init(caFile: String? = nil, clientCertificateFile: String? = nil, clientKeyFile: String? = nil) {
        self.caFile = caFile
        self.clientCertificateFile = clientCertificateFile
        self.clientKeyFile = clientKeyFile
    }

    /// `nil`: nothing configured (the system's trust roots, no client certificate).
    func configuration() throws(VaultError) -> TLSConfiguration? {
        guard caFile != nil || clientCertificateFile != nil else { return nil }
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caFile {
            do {
                _ = try NIOSSLCertificate.fromPEMFile(caFile)
            } catch {
                throw .configuration("caFile \(caFile) is not a readable PEM certificate bundle (\(error))")
            }
            tls.trustRoots = .file(caFile)
        }
        if let clientCertificateFile {
            guard let clientKeyFile else {
                throw .configuration("clientCertificate \(clientCertificateFile) is given without clientKey")
            }
            do {
                tls.certificateChain = try NIOSSLCertificate.fromPEMFile(clientCertificateFile).map { .certificate($0) }
            } catch {
                throw .configuration("clientCertificate \(clientCertificateFile) is not a readable PEM file (\(error))")
            }
            do {
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: clientKeyFile, format: .pem))
            } catch {
                throw .configuration("clientKey \(clientKeyFile) is not a readable PEM private key (\(error))")
            }
        }
        return tls
    }
}
