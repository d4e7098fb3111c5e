import Ethereum
import JSON
import JSONRPC
import Logging
import Node
import Signers
import Submission
import Synchronization
import TestSupport
import Testing

/// The send pipeline against a scripted node: each answer a real node can give, each crash point of the journal,
/// each kind of caller. No sockets, no Python; each test runs the pipeline as the Service it is.
@Suite struct SendPipelineTests {
    static let key = try! PrivateKey(hex: "0x4646464646464646464646464646464646464646464646464646464646464646")
    static var from: Address { key.address }

    struct Harness {
        let node = ScriptedNode()
        let journal: InMemoryJournal
        let wallet: Wallet
        let pipeline: SendPipeline
        let replaced = Recorded<(Bytes32, Bytes32)>()

        init(
            backend: InMemoryBackend = InMemoryBackend(keys: [SendPipelineTests.key]),
            settings: SendPipeline.Settings = Harness.fastSettings(),
            walletSettings: Wallet.Settings = Wallet.Settings(),
            journal: InMemoryJournal = InMemoryJournal()
        ) async {
            var logger = Logger(label: "test")
            logger.logLevel = .critical
            self.journal = journal
            wallet = Wallet(backends: [backend], settings: walletSettings, logger: logger)
            await wallet.refresh()
            var observers = SendPipeline.Observers()
            let replaced = self.replaced
            observers.replaced = { old, new in replaced.append((old, new.hash)) }
            pipeline = SendPipeline(
                wallet: wallet, node: node, filler: TransactionFiller(node: node), journal: journal,
                settings: settings, observers: observers, logger: logger)
        }

        var records: [JournalRecord] { journal.all }

        static func fastSettings() -> SendPipeline.Settings {
            var settings = SendPipeline.Settings()
            settings.retryBackoff = Backoff(initial: .milliseconds(1), maximum: .milliseconds(5))
            settings.lane.submitAttemptsBeforeAnswer = 3
            settings.lane.unsentAttemptsBeforeFailure = 3
            return settings
        }

        /// Runs the pipeline for the duration of `body`.
        func running(_ body: @Sendable () async throws -> Void) async throws {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await pipeline.run() }
                try await body()
                group.cancelAll()
            }
        }

        func send(_ json: JSONValue, key: String? = nil) async -> Result<SignedTransaction, RPCError> {
            await pipeline.send(try! TransactionRequest(json: json), idempotencyKey: key)
        }
    }

    static func transfer(nonce: UInt64? = nil, tip: UInt64 = 1_000_000_000, cap: UInt64 = 3_000_000_000) -> JSONValue {
        var object = JSONObject([
            ("from", .string(from.lowercaseHex)), ("to", .string(from.lowercaseHex)), ("value", "0x1"),
            ("gas", "0x5208"),
            ("maxFeePerGas", .string(Hex.encodeQuantity(cap))),
            ("maxPriorityFeePerGas", .string(Hex.encodeQuantity(tip))),
        ])
        if let nonce { object["nonce"] = .string(Hex.encodeQuantity(nonce)) }
        return .object(object)
    }

    // MARK: Caller nonces

    @Test func aFarFutureCallerNonceIsRefusedAndLeavesNoTrace() async throws {
        let harness = await Harness()
        try await harness.running {
            let refused = await harness.send(Self.transfer(nonce: 1_000_000))
            guard case .failure(let error) = refused else { Issue.record("accepted"); return }
            #expect(error.code == -32000)
            #expect(error.message.contains("the next nonce is 0"))
            #expect(harness.records.isEmpty)  // nothing journaled: a restart cannot be pushed to 1 000 001
            // The address is not stopped: the next send gets nonce 0.
            #expect(await harness.send(Self.transfer()).nonce == 0)
        }
    }

    @Test func aCallerNonceEqualToTheNextIsTakenLikeAnyOther() async throws {
        let harness = await Harness()
        harness.node.setPendingCount(5, for: Self.from)
        try await harness.running {
            #expect(await harness.send(Self.transfer(nonce: 5)).nonce == 5)
            #expect(await harness.send(Self.transfer()).nonce == 6)
        }
    }

    @Test func aCallerNonceOfAPendingTransactionReplacesItOnlyWithHigherFees() async throws {
        let harness = await Harness()
        try await harness.running {
            let original = try await harness.send(Self.transfer()).get()
            // Same fees: refused with the minimum it would take, nothing sent.
            guard case .failure(let cheap) = await harness.send(Self.transfer(nonce: 0)) else {
                Issue.record("an underpriced replacement was accepted"); return
            }
            #expect(cheap.message.hasPrefix("replacement transaction underpriced"))
            // +10 % on both: replaces it; both hashes are known and the watchers are told.
            let replacement = try await harness.send(Self.transfer(nonce: 0, tip: 1_100_000_000, cap: 3_300_000_000))
                .get()
            #expect(replacement.transaction.nonce == 0)
            #expect(harness.replaced.values.map(\.0) == [original.hash])
            #expect(harness.replaced.values.map(\.1) == [replacement.hash])
            #expect(harness.records.first { $0.hash == original.hash }?.state == .replaced)
        }
    }

    // MARK: Node answers

    @Test func replacementUnderpricedMeansTheNonceIsTakenAndNothingFails() async throws {
        let harness = await Harness()
        // A transaction sent around the gateway sits in the pool at nonce 0; the node's count does not show it yet.
        harness.node.scriptFirstBroadcast { _ in
            harness.node.setPendingCount(1, for: Self.from)  // the node's count now includes the foreign one
            return .failure(.answered(.server("replacement transaction underpriced")))
        }
        try await harness.running {
            let sent = try await harness.send(Self.transfer()).get()
            #expect(sent.transaction.nonce == 1)  // renumbered above the occupied nonce, never over it
        }
    }

    @Test func aLostAnswerThenAJournalFailureNeverTurnsIntoAnError() async throws {
        let journal = InMemoryJournal()
        let harness = await Harness(journal: journal)
        harness.node.scriptFirstBroadcast { params in
            journal.failWrites = true  // the disk fills up right after the first, unanswered, broadcast
            _ = harness.node.answerByDefault("eth_sendRawTransaction", params)  // the node took the bytes; its answer is lost
            return .failure(.connectionLost)
        }
        try await harness.running {
            let result = await harness.send(Self.transfer())
            // The retry sends the same bytes without rewriting the journal; the node had them: "already known".
            guard case .success(let signed) = result else { Issue.record("\(result)"); return }
            #expect(signed.transaction.nonce == 0)
            #expect(harness.node.calls("eth_sendRawTransaction").count == 2)  // the same bytes, once more
        }
    }

    @Test func theNodesOwnInternalErrorReachesTheClientAsAServerError() async throws {
        let harness = await Harness()
        harness.node.setScript { method, _ in
            method == "eth_sendRawTransaction" ? .failure(.answered(.internalError("database closed"))) : nil
        }
        try await harness.running {
            guard case .failure(let error) = await harness.send(Self.transfer()) else { Issue.record("sent"); return }
            // -32603 would tell viem that nothing was broadcast, and it would send again.
            #expect(error.code == -32000)
        }
    }

    @Test func aNodeTimeoutIsNoRejection() async throws {
        let harness = await Harness()
        let timeouts = Mutex(2)
        harness.node.setScript { method, _ in
            guard method == "eth_sendRawTransaction" else { return nil }
            return timeouts.withLock { count in
                guard count > 0 else { return nil }
                count -= 1
                return .failure(.answered(RPCError(code: -32002, message: "request timed out")))
            }
        }
        try await harness.running {
            #expect(await harness.send(Self.transfer()).nonce == 0)
        }
    }

    @Test func aRejectionForGoodFailsOnlyThatRequestAndBurnsNoNonce() async throws {
        let harness = await Harness()
        harness.node.scriptFirstBroadcast { _ in
            return .failure(.answered(.server("insufficient funds for gas * price + value")))
        }
        try await harness.running {
            guard case .failure(let error) = await harness.send(Self.transfer()) else { Issue.record("sent"); return }
            #expect(error.message == "insufficient funds for gas * price + value")
            #expect(await harness.send(Self.transfer()).nonce == 0)
        }
    }

    // MARK: Bounds and backends

    @Test func anIdempotencyKeyWithADifferentRequestIsRefused() async throws {
        let harness = await Harness()
        try await harness.running {
            let first = try await harness.send(Self.transfer(), key: "order-1").get()
            #expect(try await harness.send(Self.transfer(), key: "order-1").get().hash == first.hash)
            guard case .failure(let error) = await harness.send(Self.transfer(tip: 2_000_000_000), key: "order-1")
            else {
                Issue.record("a different request got the first hash"); return
            }
            #expect(error.code == -32602)
            #expect(harness.node.accepted.count == 1)
        }
    }

    @Test func aFullQueueIsRefusedBeforeANonceIsAssigned() async throws {
        var settings = Harness.fastSettings()
        settings.maximumQueuedPerAddress = 2
        let harness = await Harness(
            backend: InMemoryBackend(keys: [Self.key], latency: .milliseconds(300)), settings: settings)
        try await harness.running {
            let results = await withTaskGroup(of: Result<SignedTransaction, RPCError>.self) { group in
                for _ in 0..<5 { group.addTask { await harness.send(Self.transfer()) } }
                return await group.reduce(into: []) { $0.append($1) }
            }
            let refused = results.compactMap { if case .failure(let error) = $0 { error } else { nil } }
            #expect(!refused.isEmpty && refused.allSatisfy { $0.code == -32005 })
            let nonces = results.compactMap { try? $0.get().transaction.nonce }.sorted()
            #expect(nonces == Array(0..<UInt64(nonces.count)))  // no nonce burned by a refusal
        }
    }

    @Test func aHungBackendTimesOutAndBurnsNoNonce() async throws {
        var walletSettings = Wallet.Settings()
        walletSettings.signTimeout = .milliseconds(50)
        var settings = Harness.fastSettings()
        settings.signAttempts = 2
        let hung = InMemoryBackend(keys: [Self.key], latency: .seconds(30))
        let harness = await Harness(backend: hung, settings: settings, walletSettings: walletSettings)
        try await harness.running {
            guard case .failure(let error) = await harness.send(Self.transfer()) else { Issue.record("signed"); return }
            #expect(error.code == -32603)  // nothing was broadcast
            #expect(error.message.contains("did not answer within"))
            #expect(harness.node.calls("eth_sendRawTransaction").isEmpty)
        }
    }

    @Test func aSignatureFromAnotherKeyIsNeverUsed() async throws {
        let harness = await Harness(backend: InMemoryBackend(keys: [Self.key], impostor: PrivateKey.random()))
        try await harness.running {
            guard case .failure(let error) = await harness.send(Self.transfer()) else { Issue.record("sent"); return }
            #expect(error.message.contains("invalid signature"))
            #expect(harness.node.calls("eth_sendRawTransaction").isEmpty)
        }
    }

    // MARK: Recovery

    /// A journal as a crashed run left it: nonce 0 signed (perhaps sent), never confirmed.
    static func journalHoldingASignedTransaction(id: UInt64) async throws -> (InMemoryJournal, SignedTransaction) {
        let journal = InMemoryJournal()
        return (journal, try await journalSigned(id: id, nonce: 0, in: journal))
    }

    /// Journals a transfer at `nonce` as signed by id `id` (as `SendPipeline` does once the signature arrives).
    static func journalSigned(id: UInt64, nonce: UInt64, in journal: InMemoryJournal) async throws
        -> SignedTransaction
    {
        let signed = try Transaction(
            type: .dynamicFee, chainId: 1337, nonce: nonce,
            fees: .dynamic(maxPriorityFeePerGas: 1_000_000_000, maxFeePerGas: 3_000_000_000),
            gas: 21_000, to: Self.from, value: 1, data: []
        ).signed(with: Self.key)
        try await journal.assigned(id: id, from: Self.from, nonce: nonce)
        try await journal.signed(id: id, nonce: nonce, raw: signed.raw, hash: signed.hash)
        return signed
    }

    /// Signatures are journaled as they arrive, ahead of their turn. A crash while nonce 0 was still unsent (its
    /// signature failed, say) leaves nonce 1 journaled as signed: sent now, it would sit behind a gap forever.
    @Test func aRecordSignedAheadOfAFreeNonceIsDroppedUnsent() async throws {
        let journal = InMemoryJournal()
        let ahead = try await Self.journalSigned(id: 4, nonce: 1, in: journal)
        let harness = await Harness(journal: journal)
        try await harness.running {
            let fresh = try await harness.send(Self.transfer()).get()
            #expect(fresh.transaction.nonce == 0)
            #expect(!harness.node.accepted.map(\.hash).contains(ahead.hash))
            #expect(harness.records.first { $0.id == 4 }?.state == .failed)
        }
    }

    /// The same crash with both nonces signed: they are contiguous from the node's count, so both are sent.
    @Test func recordsSignedInARowFromTheNodesCountAreAllSent() async throws {
        let journal = InMemoryJournal()
        let first = try await Self.journalSigned(id: 4, nonce: 0, in: journal)
        let second = try await Self.journalSigned(id: 5, nonce: 1, in: journal)
        let harness = await Harness(journal: journal)
        try await harness.running {
            #expect(await harness.send(Self.transfer()).nonce == 2)
            #expect(harness.node.accepted.prefix(2).map(\.hash) == [first.hash, second.hash])
            #expect(harness.records.filter { [4, 5].contains($0.id) }.allSatisfy { $0.state == .submitted })
        }
    }

    @Test func recoverySettlesTheJournalBeforeTheLaneAssignsANonce() async throws {
        // A previous run signed nonce 0 and crashed; the node restarted and lost its pool (its count is 0).
        let (journal, old) = try await Self.journalHoldingASignedTransaction(id: 7)
        let harness = await Harness(journal: journal)
        try await harness.running {
            let fresh = try await harness.send(Self.transfer()).get()
            #expect(fresh.transaction.nonce == 1)
            // The old bytes went first, then the new transaction: no gap ever reached the node.
            #expect(harness.node.accepted.map(\.hash) == [old.hash, fresh.hash])
            #expect(harness.records.first { $0.id == 7 }?.state == .submitted)
            #expect(fresh.transaction != old.transaction)
        }
    }

    @Test func aRecoveredRecordWhoseNonceWasTakenIsSkipped() async throws {
        let (journal, _) = try await Self.journalHoldingASignedTransaction(id: 3)
        let harness = await Harness(journal: journal)
        harness.node.setPendingCount(1, for: Self.from)  // another wallet used nonce 0 meanwhile
        try await harness.running {
            #expect(await harness.send(Self.transfer()).nonce == 1)
            #expect(harness.records.first { $0.id == 3 }?.state == .failed)
        }
    }

    // MARK: Speed-up and cancel

    @Test func cancelReplacesWithAZeroValueSelfTransferAtTheSameNonce() async throws {
        let harness = await Harness()
        try await harness.running {
            let original = try await harness.send(Self.transfer()).get()
            let cancel = try await harness.pipeline.replace(hash: original.hash, .cancel).get()
            #expect(cancel.transaction.nonce == original.transaction.nonce)
            #expect(cancel.transaction.value == .zero && cancel.transaction.to == Self.from)
            #expect(FeeBump.beats(cancel.transaction.fees, original.transaction.fees))
            // The old hash is no longer pending here: a second cancel of it is refused.
            guard case .failure = await harness.pipeline.replace(hash: original.hash, .speedUp) else {
                Issue.record("replaced twice"); return
            }
        }
    }
}

/// Values a `@Sendable` observer records for a test to read.
final class Recorded<Value: Sendable>: Sendable {
    private let storage = Mutex<[Value]>([])
    func append(_ value: Value) { storage.withLock { $0.append(value) } }
    var values: [Value] { storage.withLock { $0 } }
}

extension Result where Success == SignedTransaction {
    /// The nonce of a sent transaction (`nil` when the send failed).
    var nonce: UInt64? { (try? get())?.transaction.nonce }
}

extension SendPipelineTests {
    @Test func manyConcurrentSendsOverSeveralAddressesAllGetContiguousNonces() async throws {
        let keys = (0..<5).map { _ in PrivateKey.random() }
        let harness = await Harness(backend: InMemoryBackend(keys: keys, latency: .milliseconds(2)))
        try await harness.running {
            let results = await withTaskGroup(of: (Address, Result<SignedTransaction, RPCError>).self) { group in
                for index in 0..<1_000 {
                    let from = keys[index % keys.count].address
                    group.addTask {
                        let json: JSONValue = [
                            "from": .string(from.lowercaseHex), "to": .string(from.lowercaseHex), "value": "0x1",
                        ]
                        return (from, await harness.pipeline.send(try! TransactionRequest(json: json)))
                    }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
            let failures = results.compactMap { if case .failure(let error) = $0.1 { error } else { nil } }
            #expect(failures.isEmpty, "\(failures.prefix(3))")
            for key in keys {
                let nonces = results.filter { $0.0 == key.address }.compactMap { $0.1.nonce }.sorted()
                #expect(nonces == Array(0..<200))
            }
        }
    }
}
