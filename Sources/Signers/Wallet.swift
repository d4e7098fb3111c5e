import Ethereum
import Logging
import ServiceLifecycle
import Synchronization

/// The gateway's accounts: address → the backend that holds the key. Several backends at once; refreshed on demand
/// (an admin call) and on a timer (as a `Service`). Addresses are compared as bytes.
public final class Wallet: Service, Sendable {
    private let backends: [any KeyBackend]
    private let refreshInterval: Duration
    private let logger: Logger
    private let accountsByAddress = Mutex<[Address: (account: Account, backend: any KeyBackend)]>([:])

    public init(backends: [any KeyBackend], refreshInterval: Duration = .seconds(300), logger: Logger) {
        self.backends = backends
        self.refreshInterval = refreshInterval
        self.logger = logger
    }

    /// Lists every backend's accounts. A backend that fails keeps its previous accounts (an outage must not make
    /// addresses vanish mid-flight); the first address wins when two backends hold the same key.
    @discardableResult
    public func refresh() async -> [Address] {
        var fresh: [Address: (account: Account, backend: any KeyBackend)] = [:]
        var failed: Set<String> = []
        for backend in backends {
            do {
                for account in try await backend.accounts() where fresh[account.address] == nil {
                    fresh[account.address] = (account, backend)
                }
            } catch {
                failed.insert(backend.name)
                logger.warning("cannot list accounts", metadata: ["signer.backend": "\(backend.name)", "error": "\(error)"])
            }
        }
        return accountsByAddress.withLock { current in
            for (address, entry) in current where failed.contains(entry.account.backend) && fresh[address] == nil {
                fresh[address] = entry
            }
            current = fresh
            return current.keys.sorted()
        }
    }

    public var addresses: [Address] { accountsByAddress.withLock { $0.keys.sorted() } }

    public func account(for address: Address) -> Account? {
        accountsByAddress.withLock { $0[address]?.account }
    }

    public func sign(digest: Bytes32, from address: Address) async throws(SignerError) -> Signature {
        guard let entry = accountsByAddress.withLock({ $0[address] }) else {
            throw .unknownAccount(address.checksummed)
        }
        return try await entry.backend.sign(digest: digest, for: entry.account)
    }

    /// A signature without suspending, when the account's backend can make one on this thread; `nil` otherwise.
    public func signNow(digest: Bytes32, from address: Address) throws(SignerError) -> Signature? {
        guard let entry = accountsByAddress.withLock({ $0[address] }) else {
            throw .unknownAccount(address.checksummed)
        }
        return try entry.backend.signNow(digest: digest, for: entry.account)
    }

    public func run() async throws {
        await refresh()
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.refreshInterval) }
            guard !Task.isCancelled && !Task.isShuttingDownGracefully else { break }
            await refresh()
        }
    }
}
