import Signers

/// Long-term (access key id + secret) or temporary (plus a session token) AWS credentials.
public struct AWSCredentials: Sendable, Hashable {
    public let accessKeyID: String
    public let secretAccessKey: String
    public let sessionToken: String?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }

    /// Where the credentials come from: references (`env:`/`file:`), resolved at each use so that a rotated secret
    /// file is picked up without a restart. By default the standard variables AWS's own tools read.
    public struct Source: Sendable, Hashable {
        public var accessKeyID: SecretReference
        public var secretAccessKey: SecretReference
        public var sessionToken: SecretReference?

        public init(
            accessKeyID: SecretReference = .environment("AWS_ACCESS_KEY_ID"),
            secretAccessKey: SecretReference = .environment("AWS_SECRET_ACCESS_KEY"),
            sessionToken: SecretReference? = .environmentIfSet("AWS_SESSION_TOKEN")
        ) {
            self.accessKeyID = accessKeyID
            self.secretAccessKey = secretAccessKey
            self.sessionToken = sessionToken
        }

        public func resolve() throws(SignerError) -> AWSCredentials {
            let token = try sessionToken.map { reference throws(SignerError) in
                String(decoding: try reference.resolve(), as: UTF8.self)
            }
            return AWSCredentials(
                accessKeyID: String(decoding: try accessKeyID.resolve(), as: UTF8.self),
                secretAccessKey: String(decoding: try secretAccessKey.resolve(), as: UTF8.self),
                sessionToken: token)
        }
    }
}
