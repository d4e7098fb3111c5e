import JSON

/// The bytes of one call to the node, under the gateway's own id (never the client's).
enum UpstreamRequest {
    static func bytes(id: UInt64, method: String, params: JSONValue) -> [UInt8] {
        var bytes = Array(#"{"jsonrpc":"2.0","id":"#.utf8)
        bytes += String(id).utf8
        bytes += #","method":"#.utf8
        JSONWriter.writeString(method, into: &bytes)
        bytes += #","params":"#.utf8
        JSONWriter.write(params, into: &bytes)
        bytes.append(UInt8(ascii: "}"))
        return bytes
    }
}
