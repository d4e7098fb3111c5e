extension Duration {
    /// The duration in seconds, as a `Double` (for rates and random jitter).
    public var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
