import Synchronization

/// Process-wide connection numbers, for logs and for subscription ownership.
enum ConnectionIDs {
    private static let next = Atomic<UInt64>(1)

    static func make() -> UInt64 {
        next.wrappingAdd(1, ordering: .relaxed).oldValue
    }
}
