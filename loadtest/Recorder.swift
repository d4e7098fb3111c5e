import Foundation
import NIOConcurrencyHelpers

/// Counts responses and keeps their latencies while measuring. Each connection reports from its event loop thread;
/// the lock is uncontended with one client thread.
final class Recorder: Sendable {
    struct Report {
        let responses: Int
        let errors: Int
        let elapsed: Double
        let latencies: [UInt32]

        func percentile(_ fraction: Double) -> UInt32 {
            guard !latencies.isEmpty else { return 0 }
            let index = min(latencies.count - 1, Int(Double(latencies.count - 1) * fraction))
            return latencies[index]
        }
    }

    private struct State {
        var measuring = false
        var started = DispatchTime.now()
        var responses = 0
        var errors = 0
        var latencies: [UInt32] = []
    }

    private let state = NIOLockedValueBox(State())

    func record(latencyNanoseconds: UInt64, isError: Bool) {
        state.withLockedValue { state in
            guard state.measuring else { return }
            state.responses += 1
            if isError { state.errors += 1 }
            state.latencies.append(UInt32(min(latencyNanoseconds / 1_000, UInt64(UInt32.max))))
        }
    }

    func startMeasuring() {
        state.withLockedValue { state in
            state.latencies.reserveCapacity(4_000_000)
            state.measuring = true
            state.started = .now()
        }
    }

    func stopMeasuring() -> Report {
        state.withLockedValue { state in
            state.measuring = false
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - state.started.uptimeNanoseconds) / 1e9
            return Report(
                responses: state.responses, errors: state.errors, elapsed: elapsed, latencies: state.latencies.sorted())
        }
    }
}
