import ServiceLifecycle

/// Async work that a request starts (filling a transaction from the node, a remote signature), run as children
/// of this `Service`'s task group instead of as unowned tasks: graceful shutdown waits for what is under way, and
/// nothing outlives the services. Work submitted once shutdown has begun is refused (`submit` returns `false`).
public final class RequestWork: Service, Sendable {
    public typealias Job = @Sendable () async -> Void

    private let jobs: AsyncStream<Job>
    private let input: AsyncStream<Job>.Continuation

    public init() {
        (jobs, input) = AsyncStream.makeStream(of: Job.self)
    }

    /// Starts `job` as a child of the running service; `false` when the gateway is shutting down.
    @discardableResult
    public func submit(_ job: @escaping Job) -> Bool {
        if case .terminated = input.yield(job) { return false }
        return true
    }

    public func run() async throws {
        await withDiscardingTaskGroup { group in
            await withGracefulShutdownHandler {
                for await job in jobs { group.addTask { await job() } }
            } onGracefulShutdown: {
                self.input.finish()
            }
        }
    }
}
