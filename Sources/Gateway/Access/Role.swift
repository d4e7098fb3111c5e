/// What a caller may do, as the Vault ethsign plugin's policies separate it.
public enum Role: String, Sendable, Hashable, CaseIterable, Comparable {
    /// Lists the addresses it may use, signs and sends with them, calls read methods.
    case user
    /// Also manages keys and the gateway (`signer_*` administration methods).
    case admin

    public static func < (lhs: Role, rhs: Role) -> Bool { lhs == .user && rhs == .admin }
}
