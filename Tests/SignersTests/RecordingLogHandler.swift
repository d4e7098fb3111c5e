import Logging
import Synchronization

/// Log lines kept in memory, level and metadata included, to check what a backend logs.
final class RecordingLogHandler: LogHandler, Sendable {
    private let records = Mutex<[String]>([])

    var lines: [String] { records.withLock { $0 } }

    var metadata: Logger.Metadata {
        get { [:] }
        set {}
    }

    var logLevel: Logger.Level {
        get { .trace }
        set {}
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { nil }
        set {}
    }

    func log(event: LogEvent) {
        records.withLock { $0.append("\(event.level) \(event.message) \(event.metadata ?? [:])") }
    }
}
