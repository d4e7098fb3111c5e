import ArgumentParser
import Ethereum
import Foundation
import JSON
import Signers

struct KeystoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keystore", abstract: "Create, import and list Web3 Secret Storage v3 keystore files.",
        subcommands: [New.self, Import.self, List.self])

    struct PasswordOptions: ParsableArguments {
        @Option(help: "Password by reference: env:NAME or file:/path (never on the command line).")
        var password: String

        func resolve() throws -> [UInt8] {
            let reference = SecretReference(password)
            if case .literal = reference {
                throw ValidationError(
                    "--password takes env:NAME or file:/path, so the password stays out of shell history")
            }
            return try reference.resolve()
        }
    }

    struct New: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Generate new keys and write their keystore files.")
        @Option(help: "Keystore directory.") var dir: String
        @OptionGroup var password: PasswordOptions
        @Option(help: "How many keys.") var count = 1
        @Flag(help: "Light scrypt (n = 4096): fast to unlock, for development keys only.") var light = false

        func run() throws {
            let secret = try password.resolve()
            for _ in 0..<count {
                let key = PrivateKey.random()
                let path = try KeystoreBackend.write(key, password: secret, kdf: light ? .light : .standard, to: dir)
                print("\(key.address.checksummed)  \(path)")
            }
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Encrypt an existing private key into a keystore file.")
        @Option(help: "Keystore directory.") var dir: String
        @OptionGroup var password: PasswordOptions
        @Option(help: "The private key (hex) by reference: env:NAME or file:/path.") var privateKey: String
        @Flag(help: "Light scrypt (n = 4096), for development keys only.") var light = false

        func run() throws {
            let reference = SecretReference(privateKey)
            if case .literal = reference { throw ValidationError("--private-key takes env:NAME or file:/path") }
            var text = String(decoding: try reference.resolve(), as: UTF8.self).trimmingCharacters(
                in: .whitespacesAndNewlines)
            if !text.hasPrefix("0x") { text = "0x" + text }
            let key = try PrivateKey(hex: text)
            let path = try KeystoreBackend.write(
                key, password: try password.resolve(), kdf: light ? .light : .standard, to: dir)
            print("\(key.address.checksummed)  \(path)")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the addresses of the keystore files (no decryption).")
        @Option(help: "Keystore directory.") var dir: String

        func run() throws {
            for file in try FileManager.default.contentsOfDirectory(atPath: dir).sorted() where !file.hasPrefix(".") {
                let path = (dir as NSString).appendingPathComponent(file)
                if let keystore = try? KeystoreFile(contentsOf: path) {
                    print("\(keystore.address?.checksummed ?? "(no address field)")  \(file)")
                } else {
                    print("(not a keystore)  \(file)")
                }
            }
        }
    }
}
