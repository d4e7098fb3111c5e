/// A remote backend call's failure: the service's own answer (classified by the backend for the operation it was),
/// or a credential that could not be had (already a `SignerError`).
public struct BackendCallError<ServiceError: Error & Sendable>: Error, Sendable {
    public enum Reason: Sendable {
        case service(ServiceError)
        case token(SignerError)
    }

    public let reason: Reason

    public init(_ error: ServiceError) { reason = .service(error) }
    public init(_ error: SignerError) { reason = .token(error) }
}
