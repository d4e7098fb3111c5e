import Testing

extension Tag {
    /// Starts real servers or Python clients (the dev node, the gateway process, web3.py, eth-account): slower, and
    /// needs `Tools/bootstrap`. `swift test --skip Live` runs everything else in seconds.
    @Tag public static var live: Self
}
