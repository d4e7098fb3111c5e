/// EIP-191 version 0x45 ("Ethereum Signed Message"), what `personal_sign` and `eth_sign` sign.
public enum PersonalMessage {
    /// keccak256("\x19Ethereum Signed Message:\n" ‖ decimal byte length ‖ message).
    public static func hash(_ message: some Collection<UInt8>) -> Bytes32 {
        var payload = Array("\u{19}Ethereum Signed Message:\n\(message.count)".utf8)
        payload.append(contentsOf: message)
        return Keccak256.hash(payload)
    }
}
