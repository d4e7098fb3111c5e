import Foundation
import JSON

/// Loads a JSON fixture bundled with the tests (see Tools/fixtures/README.md for where they come from).
enum Fixtures {
    static func load(_ relativePath: String) throws -> JSONValue {
        guard let root = Bundle.module.url(forResource: "Fixtures", withExtension: nil) else {
            throw FixtureError("Fixtures folder missing from the test bundle")
        }
        let data = try Data(contentsOf: root.appendingPathComponent(relativePath))
        return try JSONParser.parse(Array(data), maximumDepth: 1024)
    }
}

struct FixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension JSONValue {
    /// A required string member, for fixture reading.
    func string(_ key: String) throws -> String {
        guard let value = self[key]?.stringValue else { throw FixtureError("fixture entry lacks string \"\(key)\"") }
        return value
    }
}
