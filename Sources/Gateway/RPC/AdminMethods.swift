import Ethereum
import JSON
import JSONRPC
import Signers
import Submission

/// The operator's methods (`RolePolicy.adminMethods`: the admin role only): refresh and inspect, and key management
/// (`KeyManagementMethods`).
public struct AdminMethods: LocalMethods {
    let wallet: Wallet
    let pipeline: SendPipeline
    let journal: any Journal
    let work: RequestWork

    public init(wallet: Wallet, pipeline: SendPipeline, journal: any Journal, work: RequestWork) {
        self.wallet = wallet
        self.pipeline = pipeline
        self.journal = journal
        self.work = work
    }

    public var handlers: [String: MethodHandler] {
        KeyManagementMethods(wallet: wallet, pipeline: pipeline, journal: journal, work: work).handlers.merging([
            // Re-reads every backend's addresses now (they are also re-read every wallet.refreshSeconds).
            "signer_refreshAccounts": { [wallet, work] _, _, reply in
                let started = work.submit {
                    let problems = await wallet.refresh()
                    reply(
                        .success([
                            "accounts": .array(wallet.addresses.map { .string($0.checksummed) }),
                            "problems": .array(problems.map { .string($0.description) }),
                        ]))
                }
                if !started { reply(.failure(.internalError("the gateway is shutting down"))) }
            },
            "signer_backends": { [wallet] _, _, reply in
                reply(.success(.array(wallet.backendSummaries.map(Self.json))))
            },
            // Requests per address not yet accepted by the node (queued for a nonce, signing, being submitted).
            "signer_lanes": { [pipeline] _, _, reply in
                let depths = pipeline.queueDepths.sorted { $0.key < $1.key }
                reply(.success(.object(JSONObject(depths.map { ($0.key.checksummed, .number($0.value)) }))))
            },
            // The journal's records not yet seen mined, per address in nonce order.
            "signer_pendingTransactions": { [journal, work] _, _, reply in
                let started = work.submit {
                    do {
                        let records = try await journal.unsettled()
                        let grouped = Dictionary(grouping: records, by: \.from).sorted { $0.key < $1.key }
                        reply(
                            .success(
                                .object(
                                    JSONObject(grouped.map { ($0.key.checksummed, .array($0.value.map(Self.json))) }))))
                    } catch {
                        reply(.failure(.internalError("journal unavailable: \(error)")))
                    }
                }
                if !started { reply(.failure(.internalError("the gateway is shutting down"))) }
            },
        ]) { first, _ in first }
    }

    static func json(_ summary: Wallet.BackendSummary) -> JSONValue {
        var object = JSONObject([
            ("name", .string(summary.name)),
            ("signs", .string(summary.signingForm == .digest ? "digests" : "whole transactions")),
            ("healthy", .bool(summary.lastError == nil)),
            ("accounts", .array(summary.addresses.map { .string($0.checksummed) })),
        ])
        if let error = summary.lastError { object["lastError"] = .string(error) }
        return .object(object)
    }

    static func json(_ record: JournalRecord) -> JSONValue {
        var object = JSONObject([
            ("id", .number(record.id)), ("nonce", .number(record.nonce)), ("state", .string("\(record.state)")),
        ])
        if let hash = record.hash { object["hash"] = .string(hash.hex) }
        return .object(object)
    }
}
