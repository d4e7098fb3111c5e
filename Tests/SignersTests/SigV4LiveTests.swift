import Foundation
import Signers
import SignersAWSKMS
import TestSupport
import Testing

/// The SigV4 signer against botocore's own (`Tools/kms/sigv4_vectors.py`: random methods, paths, queries, header
/// case and spacing, bodies, session tokens, dates), byte for byte: a signer that is right only for the requests
/// KMS sends today would not survive the next endpoint.
@Suite(.tags(.live)) struct SigV4LiveTests {
    @Test func matchesBotocoreOnThreeHundredRandomRequests() async throws {
        let python = try await PythonTools.python(.kms)
        let vectors = try await ManagedProcess.output(
            name: "sigv4_vectors.py", executable: python,
            arguments: [Repository.path("Tools/kms/sigv4_vectors.py"), "--count", "300", "--seed", "7"]
        ).filter { !$0.isEmpty }
        #expect(vectors.count == 300)
        var mismatches: [String] = []
        for line in vectors {
            let vector = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            guard let expected = vector["expected"] as? [String: Any], let accessKey = vector["access_key"] as? String,
                let secretKey = vector["secret_key"] as? String, let region = vector["region"] as? String,
                let service = vector["service"] as? String, let method = vector["method"] as? String,
                let path = expected["canonical_path"] as? String, let query = expected["canonical_query"] as? String,
                let headerPairs = vector["headers"] as? [[String]], let bodyText = vector["body_b64"] as? String,
                let body = Data(base64Encoded: bodyText), let dateText = vector["date"] as? String,
                let date = Self.date(dateText)
            else {
                Issue.record("unreadable vector: \(line)")
                continue
            }
            let credentials = AWSCredentials(
                accessKeyID: accessKey, secretAccessKey: secretKey, sessionToken: vector["session_token"] as? String)
            let signer = SigV4(credentials: credentials, region: region, service: service)
            let added = signer.signingHeaders(
                method: method, path: path, query: query, headers: headerPairs.map { ($0[0], $0[1]) },
                body: Array(body), date: date)
            let authorization = added.first { $0.0 == "Authorization" }?.1
            let token = added.first { $0.0 == "X-Amz-Security-Token" }?.1
            if authorization != expected["authorization"] as? String || token != expected["x-amz-security-token"] as? String
                || added.first(where: { $0.0 == "X-Amz-Date" })?.1 != expected["x-amz-date"] as? String
            {
                mismatches.append(
                    "\(authorization ?? "nil")\n  expected \(expected["authorization"] ?? "nil")\n  canonical request:\n"
                        + "\(expected["canonical_request"] ?? "")")
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) of \(vectors.count) differ; first:\n\(mismatches.first ?? "")")
    }

    /// `20150306T230812Z` → the instant, in UTC.
    static func date(_ text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return formatter.date(from: text)
    }
}
