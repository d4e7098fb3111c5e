import ArgumentParser
import Ethereum
import Gateway

struct TokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token", abstract: "Make access tokens (stored in the configuration as their SHA-256 only).",
        subcommands: [New.self])

    struct New: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a new token once, and the access.tokens entry to paste into the configuration.")
        @Option(help: "The caller's name (logs and errors name it; never the token).") var name: String
        @Option(help: "user (sign and send with its addresses) or admin (also manage keys and the gateway).")
        var role: String = "user"
        @Option(help: "Addresses it may use, comma-separated (default: every account).") var addresses: String?

        func run() throws {
            guard let role = Role(rawValue: role) else { throw ValidationError("--role is user or admin") }
            let listed = (addresses ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            for text in listed where (try? Address(hex: text)) == nil {
                throw ValidationError("--addresses: \"\(text)\" is not an address")
            }
            let (token, digest) = AccessToken.generate()
            print("token (shown once; give it to the caller, it is not stored anywhere): \(token)")
            print("")
            print("access:")
            print("  tokens:")
            print("    - name: \(name)")
            print("      role: \(role.rawValue)")
            print("      hash: \(digest)")
            if !listed.isEmpty { print("      addresses: [\(listed.joined(separator: ", "))]") }
        }
    }
}
