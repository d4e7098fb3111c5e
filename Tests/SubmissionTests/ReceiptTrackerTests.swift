import Ethereum
import JSON
import JSONRPC
import Logging
import Node
import Submission
import Synchronization
import TestSupport
import Testing

/// The receipt tracker against a scripted chain: receipts found per block, a deep reorg walked back to its fork
/// point (the transaction reported reorged, then mined again in the new chain), confirmations only while canonical.
@Suite struct ReceiptTrackerTests {
    /// A chain the test edits: block hash by number, receipts by block hash.
    final class Chain: Sendable {
        struct State {
            var blocks: [String: (number: UInt64, parent: String)] = [:]
            var receipts: [String: [JSONValue]] = [:]
            var canonical: [UInt64: String] = [:]
        }
        let state = Mutex(State())

        func add(_ number: UInt64, _ hash: String, parent: String, receipts: [Bytes32] = []) -> ReceiptTracker.Head {
            state.withLock { state in
                state.blocks[hash] = (number, parent)
                state.canonical[number] = hash
                state.receipts[hash] = receipts.map { hash32 in
                    [
                        "transactionHash": .string(hash32.hex), "blockNumber": .string(Hex.encodeQuantity(number)),
                        "blockHash": .string(hash), "status": "0x1",
                    ]
                }
            }
            return ReceiptTracker.Head(number: number, hash: hash, parentHash: parent)
        }

        func answer(_ method: String, _ params: JSONValue) -> Result<JSONValue, NodeError>? {
            let first = params.arrayValue?.first?.stringValue ?? ""
            return state.withLock { state in
                switch method {
                case "eth_getBlockByHash":
                    guard let block = state.blocks[first] else { return .success(.null) }
                    return .success([
                        "number": .string(Hex.encodeQuantity(block.number)), "hash": .string(first),
                        "parentHash": .string(block.parent),
                    ])
                case "eth_getBlockReceipts":
                    let number = (try? Hex.decodeQuantity(first)) ?? 0
                    return .success(.array(state.canonical[number].flatMap { state.receipts[$0] } ?? []))
                case "eth_getTransactionReceipt":
                    for hash in state.canonical.values {
                        if let receipt = state.receipts[hash]?.first(where: {
                            $0["transactionHash"]?.stringValue == first
                        }) {
                            return .success(receipt)
                        }
                    }
                    return .success(.null)
                default:
                    return nil
                }
            }
        }
    }

    @Test func aDeepReorgFindsTheTransactionInTheNewChainOrReportsItPendingAgain() async throws {
        let node = ScriptedNode()
        let chain = Chain()
        node.setScript { method, params in chain.answer(method, params) }
        var settings = ReceiptTracker.Settings()
        settings.confirmationDepth = 20
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let tracker = ReceiptTracker(node: node, settings: settings, logger: logger)
        let events = Mutex<[String]>([])
        tracker.setEventHandler { event in
            events.withLock { events in
                switch event {
                case .mined(_, _, let block, _): events.append("mined@\(block)")
                case .reorged: events.append("reorged")
                case .confirmed: break
                }
            }
        }
        let transaction = Keccak256.hash([42])
        tracker.track(transaction, connectionID: 1)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await tracker.run() }
            tracker.newHead(chain.add(1, "a1", parent: "a0"))
            tracker.newHead(chain.add(2, "a2", parent: "a1", receipts: [transaction]))
            tracker.newHead(chain.add(3, "a3", parent: "a2"))
            tracker.newHead(chain.add(4, "a4", parent: "a3"))
            #expect(await eventually { events.withLock { $0 } == ["mined@2"] }, "\(events.withLock { $0 })")
            // Blocks 2…4 are replaced by b2…b5 (the transaction lands in b4); only the new tip is announced.
            _ = chain.add(2, "b2", parent: "a1")
            _ = chain.add(3, "b3", parent: "b2")
            _ = chain.add(4, "b4", parent: "b3", receipts: [transaction])
            tracker.newHead(chain.add(5, "b5", parent: "b4"))
            #expect(await eventually { events.withLock { $0 }.last == "mined@4" }, "\(events.withLock { $0 })")
            #expect(tracker.knownReceipt(transaction)?.blockNumber == 4)
            #expect(tracker.knownReceipt(transaction)?.confirmations == 2)  // b4 and b5, not a2's old count
            // Another fork from b3 without the transaction: it is pending again.
            _ = chain.add(4, "c4", parent: "b3")
            _ = chain.add(5, "c5", parent: "c4")
            tracker.newHead(chain.add(6, "c6", parent: "c5"))
            #expect(await eventually { events.withLock { $0 }.last == "reorged" }, "\(events.withLock { $0 })")
            #expect(tracker.knownReceipt(transaction) == nil)
            group.cancelAll()
        }
    }
}
