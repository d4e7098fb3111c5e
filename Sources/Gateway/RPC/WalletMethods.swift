import Ethereum
import JSON
import JSONRPC
import Node
import Signers
import Submission

/// The account and signing methods, answered from the wallet: nothing here is ever proxied to the node, whose own
/// accounts must not sign for a gateway client.
public struct WalletMethods: LocalMethods {
    let wallet: Wallet
    let pipeline: SendPipeline
    let filler: TransactionFiller
    let node: any NodeClient
    let receipts: ReceiptSubscriptions
    let work: RequestWork
    /// Value, recipient, chain and fee limits on transactions, decided once they are filled.
    let policies: SigningPolicies

    /// The pipeline's approval of a filled transaction for this caller (`nil` without policies: nothing to pay).
    static func approval(
        _ policies: SigningPolicies, _ from: Address, _ session: SessionContext
    ) -> SendPipeline.Approval? {
        guard !policies.isEmpty else { return nil }
        let identity = session.identity
        return { transaction in policies.approve(transaction, from: from, identity: identity) }
    }

    /// The wallet's addresses the caller may use (a token limited to some sees only those).
    static func accounts(_ wallet: Wallet, _ session: SessionContext) -> JSONValue {
        .array(wallet.addresses.filter(session.identity.mayUse).map { .string($0.checksummed) })
    }

    public var handlers: [String: MethodHandler] {
        [
            "eth_accounts": { [wallet] _, session, reply in reply(.success(Self.accounts(wallet, session))) },
            "eth_requestAccounts": { [wallet] _, session, reply in reply(.success(Self.accounts(wallet, session))) },
            "eth_sendTransaction": { [pipeline, policies] request, session, reply in
                do throws(RPCError) {
                    let params = try request.positionalParams()
                    guard let first = params.first else {
                        throw .invalidParams("missing value for required argument 0")
                    }
                    let transaction = try TransactionRequest(json: first)
                    let key = try Self.idempotencyKey(params)
                    pipeline.send(
                        transaction, idempotencyKey: key, connectionID: session.connectionID,
                        approve: Self.approval(policies, transaction.from, session)
                    ) { result in
                        reply(result.map { .string($0.hash.hex) })
                    }
                } catch {
                    reply(.failure(error))
                }
            },
            "signer_sendTransactionAndWatch": { [pipeline, receipts, policies] request, session, reply in
                do throws(RPCError) {
                    guard let sink = session.sink else { throw .notificationsNotSupported }
                    let params = try request.positionalParams()
                    guard let first = params.first else {
                        throw .invalidParams("missing value for required argument 0")
                    }
                    let transaction = try TransactionRequest(json: first)
                    let key = try Self.idempotencyKey(params)
                    let confirmations = UInt64(
                        clamping: max(1, params.dropFirst().first?["confirmations"]?.int64Value ?? 1))
                    pipeline.send(
                        transaction, idempotencyKey: key, connectionID: session.connectionID,
                        approve: Self.approval(policies, transaction.from, session)
                    ) { result in
                        switch result {
                        case .success(let signed):
                            let id = receipts.watch(signed.hash, confirmations: confirmations, sink: sink)
                            reply(.success(.string(id)))
                            receipts.startWatch(id, hash: signed.hash, sink: sink)
                        case .failure(let error):
                            reply(.failure(error))
                        }
                    }
                } catch {
                    reply(.failure(error))
                }
            },
            "signer_speedUpTransaction": { [pipeline] request, _, reply in
                Self.replace(pipeline, request, .speedUp, reply: reply)
            },
            "signer_cancelTransaction": { [pipeline] request, _, reply in
                Self.replace(pipeline, request, .cancel, reply: reply)
            },
            "eth_signTransaction": { [wallet, filler, node, work, policies] request, session, reply in
                do throws(RPCError) {
                    let params = try request.positionalParams()
                    guard let first = params.first else {
                        throw .invalidParams("missing value for required argument 0")
                    }
                    let transactionRequest = try TransactionRequest(json: first)
                    guard wallet.account(for: transactionRequest.from) != nil else {
                        throw .unauthorized(
                            "from address \(transactionRequest.from.checksummed) is not an account of this gateway")
                    }
                    // Everything given and a local key: answered on the connection's event loop, no hop.
                    let approve = Self.approval(policies, transactionRequest.from, session)
                    if let transaction = try filler.fillNow(transactionRequest) {
                        if let denial = approve?(transaction) { return reply(.failure(denial)) }
                        return Self.sign(wallet, work, transaction, transactionRequest.from) { result in
                            reply(result.map(Self.signedTransactionResult))
                        }
                    }
                    let started = work.submit {
                        do throws(RPCError) {
                            var completed = transactionRequest
                            if completed.nonce == nil {
                                // Not reserved: signing without sending does not consume the lane's nonce.
                                let count = try await node.call(
                                    "eth_getTransactionCount", [.string(completed.from.lowercaseHex), "pending"])
                                completed.nonce = count.stringValue.flatMap { try? Hex.decodeQuantity($0) } ?? 0
                            }
                            let transaction = try await filler.fill(completed)
                            if let denial = approve?(transaction) { return reply(.failure(denial)) }
                            Self.sign(wallet, work, transaction, completed.from) { result in
                                reply(result.map(Self.signedTransactionResult))
                            }
                        } catch {
                            reply(.failure(error))
                        }
                    }
                    if !started { reply(.failure(Self.shuttingDown)) }
                } catch {
                    reply(.failure(error))
                }
            },
            "eth_sign": { [wallet, work] request, _, reply in
                Self.signMessage(wallet, work, request, addressIndex: 0, reply: reply)
            },
            "personal_sign": { [wallet, work] request, _, reply in
                Self.signMessage(wallet, work, request, addressIndex: 1, reply: reply)
            },
            "eth_signTypedData_v4": { [wallet, work] request, _, reply in
                Self.signTypedData(wallet, work, request, reply: reply)
            },
            "eth_signTypedData_v3": { [wallet, work] request, _, reply in
                Self.signTypedData(wallet, work, request, reply: reply)
            },
            "eth_signTypedData": { _, _, reply in
                reply(.failure(.unsupportedMethod("eth_signTypedData (v1) is not supported; use eth_signTypedData_v4")))
            },
        ]
    }

    /// `signer_speedUpTransaction(hash)` / `signer_cancelTransaction(hash)`: what wallets offer for a pending
    /// transaction — the same nonce with bumped fees (for cancel, a 0-value transfer to itself). Answers the new
    /// hash;
    /// watchers of the old one are told `{"event":"replaced"}`.
    static func replace(
        _ pipeline: SendPipeline, _ request: RPCRequest, _ kind: SendPipeline.ReplacementKind,
        reply: @escaping @Sendable (Result<JSONValue, RPCError>) -> Void
    ) {
        do throws(RPCError) {
            let params = try request.positionalParams()
            guard let text = params.first?.stringValue, let hash = try? Bytes32(hex: text) else {
                throw .invalidParams("expected a transaction hash (0x + 64 hex digits)")
            }
            pipeline.replace(hash: hash, kind) { reply($0.map { .string($0.hash.hex) }) }
        } catch {
            reply(.failure(error))
        }
    }

    static func idempotencyKey(_ params: [JSONValue]) throws(RPCError) -> String? {
        guard params.count > 1, let options = params[1].objectValue else { return nil }
        guard let key = options["idempotencyKey"] else { return nil }
        guard let text = key.stringValue, !text.isEmpty, text.count <= 200 else {
            throw .invalidParams("idempotencyKey must be a non-empty string of at most 200 characters")
        }
        return text
    }

    static func account(_ value: JSONValue?, _ wallet: Wallet) throws(RPCError) -> Address {
        guard let text = value?.stringValue else {
            throw .invalidParams("expected an account address (0x + 40 hex digits)")
        }
        let address: Address
        do { address = try Address(hex: text) } catch {
            throw .invalidParams("invalid account address \(text): \(error)")
        }
        guard wallet.account(for: address) != nil else {
            throw .unauthorized("account \(address.checksummed) is not an account of this gateway")
        }
        return address
    }

    static let shuttingDown = RPCError.internalError("the gateway is shutting down; nothing was signed")

    /// Signs on this thread when the key is local, otherwise as request work; `completion` runs exactly once.
    static func sign(
        _ wallet: Wallet, _ work: RequestWork, _ digest: Bytes32, _ address: Address,
        completion: @escaping @Sendable (Result<Signature, RPCError>) -> Void
    ) {
        do throws(SignerError) {
            if let signature = try wallet.signNow(digest: digest, from: address) {
                return completion(.success(signature))
            }
        } catch {
            return completion(.failure(.internalError("signing failed: \(error.description)")))
        }
        submitSigning(work, completion) { () async throws(SignerError) in
            try await wallet.sign(digest: digest, from: address)
        }
    }

    /// A signature made as request work, its failure worded once for every signing method.
    private static func submitSigning<Value: Sendable>(
        _ work: RequestWork, _ completion: @escaping @Sendable (Result<Value, RPCError>) -> Void,
        _ body: @escaping @Sendable () async throws(SignerError) -> Value
    ) {
        let started = work.submit {
            do throws(SignerError) {
                completion(.success(try await body()))
            } catch {
                completion(.failure(.internalError("signing failed: \(error.description)")))
            }
        }
        if !started { completion(.failure(shuttingDown)) }
    }

    static func signedTransactionResult(_ signed: SignedTransaction) -> JSONValue {
        ["raw": .string(Hex.encode(signed.raw)), "tx": signed.json]
    }

    /// A transaction signed in the form its backend signs: on this thread when the key is local, otherwise as
    /// request work; `completion` runs exactly once.
    static func sign(
        _ wallet: Wallet, _ work: RequestWork, _ transaction: Transaction, _ address: Address,
        completion: @escaping @Sendable (Result<SignedTransaction, RPCError>) -> Void
    ) {
        guard wallet.signsWholeTransactions(address) else {
            return sign(wallet, work, transaction.signingHash, address) { result in
                completion(result.map { SignedTransaction(transaction: transaction, signature: $0) })
            }
        }
        submitSigning(work, completion) { () async throws(SignerError) in
            try await wallet.sign(transaction: transaction, from: address)
        }
    }

    /// `eth_sign(address, data)` and `personal_sign(data, address)`: EIP-191 over the bytes (hex), or over the
    /// UTF-8 text when the message is not hex (MetaMask accepts both).
    static func signMessage(
        _ wallet: Wallet, _ work: RequestWork, _ request: RPCRequest, addressIndex: Int,
        reply: @escaping @Sendable (Result<JSONValue, RPCError>) -> Void
    ) {
        do throws(RPCError) {
            let params = try request.positionalParams()
            guard params.count >= 2 else { throw .invalidParams("expected a message and an address") }
            let address = try account(params[addressIndex], wallet)
            guard let message = params[1 - addressIndex].stringValue else {
                throw .invalidParams("message must be a string")
            }
            let bytes = (try? Hex.decode(message)) ?? Array(message.utf8)
            sign(wallet, work, PersonalMessage.hash(bytes), address) { reply($0.map { .string(Hex.encode($0.rsv)) }) }
        } catch {
            reply(.failure(error))
        }
    }

    /// `eth_signTypedData_v4(address, typedData)`; the document may come as an object or as a JSON string.
    static func signTypedData(
        _ wallet: Wallet, _ work: RequestWork, _ request: RPCRequest,
        reply: @escaping @Sendable (Result<JSONValue, RPCError>) -> Void
    ) {
        do throws(RPCError) {
            let params = try request.positionalParams()
            guard params.count >= 2 else { throw .invalidParams("expected an address and a typed data document") }
            let address = try account(params[0], wallet)
            var document = params[1]
            if let text = document.stringValue {
                guard let parsed = try? JSONParser.parse(text) else {
                    throw .invalidParams("typed data string is not JSON")
                }
                document = parsed
            }
            let digest: Bytes32
            do {
                digest = try TypedData(json: document).signingHash()
            } catch {
                throw .invalidParams(error.description)
            }
            sign(wallet, work, digest, address) { reply($0.map { .string(Hex.encode($0.rsv)) }) }
        } catch {
            reply(.failure(error))
        }
    }
}
