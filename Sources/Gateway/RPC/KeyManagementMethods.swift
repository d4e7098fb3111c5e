import Ethereum
import JSON
import JSONRPC
import Signers
import Submission

/// Key management for the admin role: keys are made, imported and deleted in their backends, never exported.
///
/// - `signer_createAccount(backend, {label}?)` → `{address, backend, keyReference}`
/// - `signer_importAccount(backend, privateKey, {label}?)` → the same; keystore and Vault ethsign backends only
/// - `signer_deleteAccount(address, {confirm: address})` → `{address, backend, deleted: true}`; refused while the
///   address has transactions in flight or not yet mined (their fee bumps and cancellations need the key)
struct KeyManagementMethods: LocalMethods {
    let wallet: Wallet
    let pipeline: SendPipeline
    let journal: any Journal
    let work: RequestWork

    var handlers: [String: MethodHandler] {
        [
            "signer_createAccount": { [wallet, work] request, _, reply in
                Self.run(work, reply) { () throws(RPCError) in
                    let params = try request.positionalParams()
                    let backend = try Self.backendName(params.first)
                    let label = try Self.label(params.count > 1 ? params[1] : nil)
                    return try await Self.managing { () async throws(SignerError) in
                        Self.json(try await wallet.createAccount(backend: backend, label: label))
                    }
                }
            },
            "signer_importAccount": { [wallet, work] request, _, reply in
                Self.run(work, reply) { () throws(RPCError) in
                    let params = try request.positionalParams()
                    let backend = try Self.backendName(params.first)
                    let key = try Self.privateKey(params.count > 1 ? params[1] : nil)
                    let label = try Self.label(params.count > 2 ? params[2] : nil)
                    return try await Self.managing { () async throws(SignerError) in
                        Self.json(try await wallet.importAccount(key, backend: backend, label: label))
                    }
                }
            },
            "signer_deleteAccount": { [wallet, pipeline, journal, work] request, _, reply in
                Self.run(work, reply) { () throws(RPCError) in
                    let params = try request.positionalParams()
                    let address = try Self.confirmedAddress(params)
                    let withdrawn = try await Self.managing { () throws(SignerError) in try wallet.withdraw(address) }
                    // Withdrawn first, then checked: a send that arrives now is refused, none can slip in between.
                    if let busy = await Self.inFlight(address, pipeline, journal) {
                        wallet.restore(withdrawn)
                        throw .server(busy)
                    }
                    try await Self.managing { () async throws(SignerError) in try await wallet.delete(withdrawn) }
                    return [
                        "address": .string(address.checksummed), "backend": .string(withdrawn.account.backend),
                        "deleted": true,
                    ]
                }
            },
        ]
    }

    /// Why `address` must keep its key for now, or nil.
    private static func inFlight(_ address: Address, _ pipeline: SendPipeline, _ journal: any Journal) async
        -> String?
    {
        if let queued = pipeline.queueDepths[address], queued > 0 {
            return "\(address.checksummed) has \(queued) transactions being signed or submitted; delete it when they "
                + "are done"
        }
        let unsettled: [JournalRecord]
        do {
            unsettled = try await journal.unsettled().filter { $0.from == address }
        } catch {
            return "the journal cannot say whether \(address.checksummed) has transactions in flight (\(error)); "
                + "nothing was deleted"
        }
        guard !unsettled.isEmpty else { return nil }
        return "\(address.checksummed) has \(unsettled.count) transactions not yet mined (signer_pendingTransactions); "
            + "their replacements need the key, so delete it once they are mined"
    }

    /// The body as request work; its error or value answered once.
    private static func run(
        _ work: RequestWork, _ reply: @escaping @Sendable (Result<JSONValue, RPCError>) -> Void,
        _ body: @escaping @Sendable () async throws(RPCError) -> JSONValue
    ) {
        let started = work.submit {
            do throws(RPCError) { reply(.success(try await body())) } catch { reply(.failure(error)) }
        }
        if !started { reply(.failure(.internalError("the gateway is shutting down; no key was changed"))) }
    }

    /// A backend's refusal as the caller's problem (-32000, worded by the backend); an outage as retryable.
    private static func managing<Value>(
        _ body: () async throws(SignerError) -> Value
    ) async throws(RPCError) -> Value {
        do throws(SignerError) {
            return try await body()
        } catch {
            if error.isPermanent { throw .server(error.description) }
            throw .internalError("\(error.description); try again")
        }
    }

    private static func backendName(_ value: JSONValue?) throws(RPCError) -> String {
        guard let name = value?.stringValue, !name.isEmpty else {
            throw .invalidParams("expected the name of a key backend (see signer_backends)")
        }
        return name
    }

    private static func label(_ value: JSONValue?) throws(RPCError) -> String? {
        guard let value, value != .null else { return nil }
        guard let options = value.objectValue else { throw .invalidParams("options must be an object: {\"label\": …}") }
        guard let label = options["label"] else { return nil }
        guard let text = label.stringValue, !text.isEmpty, text.count <= 127 else {
            throw .invalidParams("label must be a non-empty string of at most 127 characters")
        }
        return text
    }

    /// 32 bytes of hex, with or without 0x. The text is never repeated in an error.
    private static func privateKey(_ value: JSONValue?) throws(RPCError) -> PrivateKey {
        guard var text = value?.stringValue else {
            throw .invalidParams("expected the private key to import (64 hex digits)")
        }
        if !text.hasPrefix("0x") { text = "0x" + text }
        guard text.count == 66, let key = try? PrivateKey(hex: text) else {
            throw .invalidParams("the private key must be 32 bytes of hex within secp256k1's order")
        }
        return key
    }

    /// `[address, {confirm: address}]`: the address, said twice, so that a mistyped or copied call deletes nothing.
    private static func confirmedAddress(_ params: [JSONValue]) throws(RPCError) -> Address {
        guard let text = params.first?.stringValue, let address = try? Address(hex: text) else {
            throw .invalidParams("expected the account address to delete (0x + 40 hex digits)")
        }
        guard params.count > 1, let confirm = params[1]["confirm"]?.stringValue,
            let confirmed = try? Address(hex: confirm), confirmed == address
        else {
            throw .invalidParams(
                "deleting a key cannot be undone by the gateway; repeat the address as {\"confirm\": \"\(text)\"}")
        }
        return address
    }

    static func json(_ account: Account) -> JSONValue {
        [
            "address": .string(account.address.checksummed), "backend": .string(account.backend),
            "keyReference": .string(account.keyReference),
        ]
    }
}
