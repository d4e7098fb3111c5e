/// Waits until `condition` holds, checking every `interval`, for at most `timeout`; returns whether it held. The
/// one way a test waits for something another process or task does (assert on the result, with a message).
public func eventually(
    timeout: Duration = .seconds(30), every interval: Duration = .milliseconds(50),
    _ condition: () async throws -> Bool
) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while true {
        if try await condition() { return true }
        guard ContinuousClock.now < deadline else { return false }
        try? await Task.sleep(for: interval)
    }
}
