import JSON
import JSONRPC
import Testing

@Suite struct RPCDecoderTests {
    func decode(_ text: String) -> Result<RPCMessage, RPCTopLevelError> { RPCDecoder.decode(Array(text.utf8)) }

    @Test func idsAreEchoedExactly() throws {
        for (text, id) in [
            (#"{"jsonrpc":"2.0","id":0,"method":"eth_chainId"}"#, RPCID.number("0")),
            (#"{"jsonrpc":"2.0","id":1.0,"method":"eth_chainId"}"#, .number("1.0")),
            (#"{"jsonrpc":"2.0","id":"abc","method":"eth_chainId"}"#, .string("abc")),
            (#"{"jsonrpc":"2.0","id":null,"method":"net_version"}"#, .null),
            (#"{"jsonrpc":"2.0","id":18446744073709551616123,"method":"x"}"#, .number("18446744073709551616123")),
        ] {
            guard case .success(.single(.request(let request))) = decode(text) else {
                Issue.record("\(text) did not decode")
                continue
            }
            #expect(request.id == id)
            let response = RPCResponse(id: request.id!, result: "0x1")
            let echoed = try JSONParser.parse(response.bytes)
            #expect(echoed["id"] == id.json)
        }
    }

    @Test func notificationsHaveNoID() {
        guard case .success(.single(.request(let request))) = decode(#"{"jsonrpc":"2.0","method":"eth_x"}"#) else {
            Issue.record("not decoded")
            return
        }
        #expect(request.isNotification)
    }

    @Test func gethErrorsForBadDocuments() {
        guard case .failure(.single(let parse)) = decode("{bad") else { Issue.record("parse"); return }
        #expect(parse.error?.code == -32700)
        #expect(parse.id == .null)

        guard case .failure(.single(let empty)) = decode("[]") else { Issue.record("empty batch"); return }
        #expect(empty.error == .emptyBatch)

        let tooMany =
            "[" + Array(repeating: #"{"jsonrpc":"2.0","id":1,"method":"m"}"#, count: 1_001).joined(separator: ",") + "]"
        guard case .failure(.batch(let large)) = decode(tooMany) else { Issue.record("batch too large"); return }
        #expect(large.count == 1)
        #expect(large.first?.error == RPCError(code: -32600, message: "batch too large"))
        #expect(
            String(decoding: RPCTopLevelError.batch(large).bytes, as: UTF8.self)
                == #"[{"jsonrpc":"2.0","id":1,"error":{"code":-32600,"message":"batch too large"}}]"#)
    }

    @Test func invalidItemsKeepTheirPlaceInABatch() {
        let text =
            #"[{"jsonrpc":"2.0","id":1,"method":"a"}, 5, {"jsonrpc":"2.0","id":3}, {"id":{},"method":"m"}, {"jsonrpc":"1.0","id":4,"method":"m"}]"#
        guard case .success(.batch(let items)) = decode(text) else { Issue.record("batch"); return }
        #expect(items.count == 5)
        guard case .request(let first) = items[0] else { Issue.record("first"); return }
        #expect(first.method == "a")
        guard case .invalid(let second) = items[1], case .invalid(let third) = items[2],
            case .invalid(let fourth) = items[3], case .invalid(let fifth) = items[4]
        else { Issue.record("invalid items"); return }
        #expect(second.error?.code == -32600 && second.id == .null)
        #expect(third.error?.code == -32600 && third.id == .number("3"))
        #expect(fourth.error?.code == -32600)
        #expect(fifth.error?.code == -32600 && fifth.id == .number("4"))
    }

    @Test func errorVocabularyMatchesGeth() {
        #expect(RPCError.methodNotFound("foo_bar").message == "the method foo_bar does not exist/is not available")
        #expect(RPCError.unknownSubscription("x").message == #"no "x" subscription in eth namespace"#)
        #expect(RPCError.notificationsNotSupported.code == -32601)
        #expect(RPCError.subscriptionNotFound == RPCError(code: -32000, message: "subscription not found"))
        #expect(RPCError.responseTooLarge.code == -32003)
    }

    @Test func paramsMustBePositional() throws {
        #expect(try RPCRequest(id: .null, method: "m", params: nil).positionalParams() == [])
        #expect(try RPCRequest(id: .null, method: "m", params: [1, "a"]).positionalParams() == [1, "a"])
        #expect(throws: RPCError.self) { try RPCRequest(id: .null, method: "m", params: ["a": 1]).positionalParams() }
    }

    @Test func responsesFromANodeAreRead() throws {
        let ok = try RPCResponse(json: try JSONParser.parse(#"{"jsonrpc":"2.0","id":7,"result":{"a":[1,2]}}"#))
        #expect(ok.id == .number("7") && ok.result == ["a": [1, 2]])
        let failed = try RPCResponse(
            json: try JSONParser.parse(
                #"{"jsonrpc":"2.0","id":"x","error":{"code":3,"message":"execution reverted","data":"0x08c379a0"}}"#))
        #expect(failed.error == RPCError(code: 3, message: "execution reverted", data: "0x08c379a0"))
    }

    @Test func notificationShape() {
        let bytes = RPCNotification.subscriptionBytes(id: "0xabc", result: JSONWriter.bytes(["number": "0x1"]))
        #expect(
            String(decoding: bytes, as: UTF8.self)
                == #"{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0xabc","result":{"number":"0x1"}}}"#
        )
    }
}
