import Foundation
import JSON
import JSONRPC
import Logging

/// Which requests are signing decisions, and what of each goes into the audit log: the caller by name and role,
/// the method, the addresses and amount it names, the decision (allowed, denied and why, failed and why) and the
/// resulting hash. Params are copied field by field, never whole: a typed-data payload or a message stays out.
public struct AuditTrail: Sendable {
    static let auditedMethods: Set<String> = Set(RolePolicy.signingMethods.keys).union(RolePolicy.byHashMethods)
        .union(RolePolicy.adminMethods)
    /// Refusals by access control or policy (the rest are failures of an allowed request).
    static let denialCodes: Set<Int> = [4001, 4100, 4200, -32005]

    let log: AuditLog
    let logger: Logger

    public init(log: AuditLog, logger: Logger) {
        self.log = log
        self.logger = logger
    }

    public static func audits(_ method: String) -> Bool { auditedMethods.contains(method) }

    /// Records the decision on `request`, then calls `done` (once the line is durable).
    public func record(
        _ request: RPCRequest, identity: Identity, outcome: Result<JSONValue, RPCError>,
        done: @escaping @Sendable () -> Void
    ) {
        let logger = self.logger
        log.append(Self.line(request, identity: identity, outcome: outcome, at: Date())) { durable in
            if !durable {
                logger.error(
                    "audit log: a signing decision could not be written",
                    metadata: ["rpc.method": "\(request.method)"])
            }
            done()
        }
    }

    static func line(
        _ request: RPCRequest, identity: Identity, outcome: Result<JSONValue, RPCError>, at time: Date
    ) -> JSONValue {
        var object = JSONObject([
            ("time", .string(Date.ISO8601FormatStyle(includingFractionalSeconds: true).format(time))),
            ("caller", .string(identity.name)), ("role", .string(identity.role.rawValue)),
            ("method", .string(request.method)),
        ])
        let params = (try? request.positionalParams()) ?? []
        switch RolePolicy.signingMethods[request.method] {
        case .fromField?:
            let transaction = params.first
            for field in ["from", "to", "value", "nonce", "chainId"] {
                if let value = transaction?[field], value.stringValue != nil || value.numberText != nil {
                    object[field] = value
                }
            }
        case .param(let index)?:
            if params.indices.contains(index), let address = params[index].stringValue {
                object["from"] = .string(address)
            }
        case nil:
            if RolePolicy.byHashMethods.contains(request.method), let hash = params.first?.stringValue {
                object["replaces"] = .string(hash)
            }
            // Key management: the backend or the address it names (an imported key's text is the second param,
            // and stays out).
            switch request.method {
            case "signer_createAccount", "signer_importAccount":
                if let backend = params.first?.stringValue { object["backend"] = .string(backend) }
            case "signer_deleteAccount":
                if let address = params.first?.stringValue { object["address"] = .string(address) }
            default: break
            }
        }
        switch outcome {
        case .success(let result):
            object["decision"] = "allowed"
            let sends = RolePolicy.signingMethods[request.method] == .fromField
                || RolePolicy.byHashMethods.contains(request.method)
            if let hash = result.stringValue, hash.count == 66, sends {
                object["hash"] = .string(hash)
            } else if let hash = result["tx"]?["hash"]?.stringValue {
                object["hash"] = .string(hash)
            } else if let address = result["address"]?.stringValue {
                object["address"] = .string(address)
            }
        case .failure(let error):
            object["decision"] = denialCodes.contains(error.code) ? "denied" : "failed"
            object["code"] = .number(error.code)
            object["reason"] = .string(error.message)
        }
        return .object(object)
    }
}
