/// A secp256k1 secret key in memory this type allocates itself and zeroes when released.
///
/// `[UInt8]` cannot be wiped reliably (copy-on-write may leave copies behind), so the 32 bytes live in a raw
/// allocation that never escapes: callers only ever borrow a pointer to them.
public final class PrivateKey: @unchecked Sendable {
    // Immutable after init; the only mutation is the wipe in deinit, when no other reference exists.
    private let storage: UnsafeMutableRawBufferPointer

    /// Copies 32 bytes into owned memory after checking 0 < key < n.
    public init(bytes: some Collection<UInt8>) throws(Secp256k1Error) {
        guard bytes.count == 32 else { throw .invalidPrivateKey }
        // Validate in a local allocation first: once `storage` is set, a throwing init would also run deinit.
        let candidate = UnsafeMutableRawBufferPointer.allocate(byteCount: 32, alignment: 16)
        candidate.copyBytes(from: bytes)
        guard Secp256k1.isValidPrivateKey(candidate) else {
            Self.wipe(candidate)
            throw .invalidPrivateKey
        }
        storage = candidate
    }

    /// A new key from the system's cryptographically secure generator.
    public static func random() -> PrivateKey {
        var generator = SystemRandomNumberGenerator()
        while true {
            var bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
            defer { bytes.withUnsafeMutableBytes { _ = $0.initializeMemory(as: UInt8.self, repeating: 0) } }
            if let key = try? PrivateKey(bytes: bytes) { return key }
        }
    }

    public convenience init(hex: String) throws(Secp256k1Error) {
        guard var bytes = try? Hex.decode(hex, byteCount: 32) else { throw .invalidPrivateKey }
        defer { bytes.withUnsafeMutableBytes { _ = $0.initializeMemory(as: UInt8.self, repeating: 0) } }
        try self.init(bytes: bytes)
    }

    deinit { Self.wipe(storage) }

    private static func wipe(_ memory: UnsafeMutableRawBufferPointer) {
        // Zeroing through the raw pointer is not elided: the memory is handed to the allocator's opaque free() right
        // after, which the optimiser must assume may read it.
        _ = memory.initializeMemory(as: UInt8.self, repeating: 0)
        memory.deallocate()
    }

    /// Borrows the secret for the duration of `body`. Do not let the pointer escape.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(storage))
    }

    public var publicKey: PublicKey { Secp256k1.publicKey(of: self) }
    public var address: Address { Address(publicKey: publicKey) }
}
