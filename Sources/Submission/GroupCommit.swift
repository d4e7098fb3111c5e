import Dispatch
import GRDB
import Synchronization

/// Durable writes from many tasks that share one transaction, and so one fsync: each caller's change is on disk
/// before its call returns (the promise "journaled before the hash is returned"), but the changes that arrive while
/// a commit is under way all go into the next one. With one fsync per change, a busy address spent most of its
/// time waiting for the disk; with this, a burst of N changes costs one commit.
///
/// Each change runs in its own savepoint, so one that fails (a unique key taken) is rolled back alone and reported
/// to its caller alone; a commit that fails is reported to every caller of the batch.
final class GroupCommit: Sendable {
    private typealias Answer = @Sendable ((any Error)?) -> Void

    private struct Change: Sendable {
        /// Applies the change inside the batch's transaction and returns how to answer its caller once the batch's
        /// fate is known (`nil`: committed).
        let apply: @Sendable (Database) -> Answer
        /// Answers the caller when the change never ran (the batch's transaction could not begin).
        let fail: @Sendable (any Error) -> Void
    }

    private struct Queue {
        var changes: [Change] = []
        var committing = false
    }

    private let database: DatabaseQueue
    private let queue = Mutex(Queue())
    /// The blocking SQLite calls run here, never on the cooperative pool.
    private let committer = DispatchQueue(label: "journal.group-commit")

    init(database: DatabaseQueue) {
        self.database = database
    }

    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let apply: @Sendable (Database) -> Answer = { db in
                do {
                    var value: T?
                    try db.inSavepoint {
                        value = try body(db)
                        return .commit
                    }
                    guard let value else { return { _ in } }  // inSavepoint runs its body exactly once
                    return { commitError in
                        if let commitError {
                            continuation.resume(throwing: commitError)
                        } else {
                            continuation.resume(returning: value)
                        }
                    }
                } catch {
                    return { _ in continuation.resume(throwing: error) }
                }
            }
            let change = Change(apply: apply, fail: { continuation.resume(throwing: $0) })
            let startCommitting = queue.withLock { queue -> Bool in
                queue.changes.append(change)
                defer { queue.committing = true }
                return !queue.committing
            }
            if startCommitting { committer.async { self.commitUntilIdle() } }
        }
    }

    private func commitUntilIdle() {
        while true {
            let batch = queue.withLock { queue -> [Change] in
                let batch = queue.changes
                queue.changes.removeAll(keepingCapacity: true)
                if batch.isEmpty { queue.committing = false }
                return batch
            }
            if batch.isEmpty { return }
            var answers: [Answer] = []
            answers.reserveCapacity(batch.count)
            do {
                try database.inTransaction { db in
                    for change in batch { answers.append(change.apply(db)) }
                    return .commit
                }
                for answer in answers { answer(nil) }
            } catch {
                // The batch's transaction could not begin or commit: none of its changes is durable.
                for answer in answers { answer(error) }
                for change in batch.dropFirst(answers.count) { change.fail(error) }
            }
        }
    }
}
