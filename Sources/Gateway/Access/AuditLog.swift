import Dispatch
import Foundation
import JSON
import Synchronization

/// The audit log: one JSON line per signing decision, appended to a file and fsynced before the caller is
/// answered, as the journal is. Lines that arrive while a write is under way share the next write and its fsync
/// (group commit), so a busy gateway does not wait on the disk once per request.
///
/// What goes in is chosen by `AuditRecord`: identities by name, addresses, amounts, hashes and refusals; never a
/// token, a key or a signature.
public final class AuditLog: Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    private struct Queue {
        /// `nil` bytes: a flush marker, answered with the batch it lands in.
        var lines: [(bytes: [UInt8]?, done: @Sendable (Bool) -> Void)] = []
        var writing = false
    }

    private let descriptor: Int32
    private let queue = Mutex(Queue())
    /// The blocking write and fsync run here, never on an event loop or the cooperative pool.
    private let writer = DispatchQueue(label: "audit-log")

    public init(path: String) throws(Failure) {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw Failure(description: "cannot open the audit log \(path): \(String(cString: strerror(errno)))")
        }
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }

    /// Appends `record` as one line; `done(true)` once it is on disk, `done(false)` if the disk refused it (the
    /// caller says so in its log; the answer is not held back forever).
    public func append(_ record: JSONValue, done: @escaping @Sendable (Bool) -> Void) {
        var bytes = JSONWriter.bytes(record)
        bytes.append(0x0A)
        enqueue(bytes, done)
    }

    /// Returns once every line appended so far is on disk.
    public func flush() async {
        await withCheckedContinuation { continuation in enqueue(nil) { _ in continuation.resume() } }
    }

    private func enqueue(_ bytes: [UInt8]?, _ done: @escaping @Sendable (Bool) -> Void) {
        let start = queue.withLock { queue -> Bool in
            queue.lines.append((bytes, done))
            defer { queue.writing = true }
            return !queue.writing
        }
        if start { writer.async { self.drain() } }
    }

    private func drain() {
        while true {
            let batch = queue.withLock { queue -> [(bytes: [UInt8]?, done: @Sendable (Bool) -> Void)] in
                defer { queue.lines.removeAll() }
                if queue.lines.isEmpty { queue.writing = false }
                return queue.lines
            }
            guard !batch.isEmpty else { return }
            let output = batch.compactMap(\.bytes).flatMap { $0 }
            let durable = output.withUnsafeBytes { buffer -> Bool in
                var offset = 0
                while offset < buffer.count {
                    let written = write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                    if written < 0 && errno == EINTR { continue }
                    guard written > 0 else { return false }
                    offset += written
                }
                return fsync(descriptor) == 0
            }
            for line in batch { line.done(durable) }
        }
    }
}
