"""JSON-RPC envelope: ids, batches, error codes, content types, shutdown."""

import json
import urllib.error
import urllib.request

import aiohttp
import pytest

from conftest import CHAIN_ID, DevNode, run, ws_recv


def test_ready_line_format(auto):
    assert auto.ready_line == f"devnode listening on http://127.0.0.1:{auto.port} (ws://127.0.0.1:{auto.port})\n"


@pytest.mark.parametrize("id_", [7, "abc", None, 1.5, 2**70])
def test_id_echoed_unchanged(auto, id_):
    resp = auto.raw({"jsonrpc": "2.0", "id": id_, "method": "eth_chainId", "params": []})
    assert resp == {"jsonrpc": "2.0", "id": id_, "result": hex(CHAIN_ID)}


def test_batch_in_order_with_mixed_results(auto):
    resp = auto.raw([
        {"jsonrpc": "2.0", "id": 3, "method": "net_version"},
        {"jsonrpc": "2.0", "id": 1, "method": "nope_method"},
        {"jsonrpc": "2.0", "method": "eth_chainId"},  # notification: no answer
        {"jsonrpc": "2.0", "id": "z", "method": "eth_chainId"},
        5,
    ])
    assert [r.get("id") for r in resp] == [3, 1, "z", None]
    assert resp[0]["result"] == str(CHAIN_ID)
    assert resp[1]["error"] == {"code": -32601, "message": "the method nope_method does not exist/is not available"}
    assert resp[3]["error"]["code"] == -32600


def test_empty_and_oversized_batch(auto):
    assert auto.raw([]) == {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "empty batch"}}
    too_many = [{"jsonrpc": "2.0", "id": i, "method": "eth_chainId"} for i in range(1001)]
    resp = auto.raw(too_many)
    assert len(resp) == 1 and resp[0]["error"] == {"code": -32600, "message": "batch too large"}


def test_parse_and_invalid_request(auto):
    assert auto.raw(b"{not json")["error"] == {"code": -32700, "message": "parse error"}
    assert auto.raw({"id": 1, "method": "eth_chainId"})["error"]["code"] == -32600  # no jsonrpc
    assert auto.raw({"jsonrpc": "2.0", "id": {"a": 1}, "method": "eth_chainId"})["error"]["code"] == -32600


def test_bad_params(auto):
    assert auto.error("eth_getBalance", "0x1234")["code"] == -32602
    assert auto.error("eth_getBlockByNumber", "0x01", False)["code"] == -32602  # leading zero
    assert auto.error("eth_getBlockByNumber", 1, False)["code"] == -32602  # JSON number
    assert auto.error("eth_sendRawTransaction", "0xabc")["code"] == -32602  # odd length
    assert auto.error("eth_chainId", 1)["message"] == "too many arguments, want at most 0"
    assert auto.error("eth_getTransactionReceipt")["message"] == "missing value for required argument 0"


def test_http_content_type_and_get(auto):
    with pytest.raises(urllib.error.HTTPError) as exc:
        auto.raw({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}, content_type="text/plain")
    assert exc.value.code == 415
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(auto.http, timeout=5)
    assert exc.value.code == 400


def test_ws_text_binary_batch_and_null_id(auto):
    async def go():
        async with aiohttp.ClientSession() as s, s.ws_connect(auto.ws) as ws:
            await ws.send_bytes(json.dumps({"jsonrpc": "2.0", "id": 0, "method": "eth_chainId"}).encode())
            assert (await ws_recv(ws))["result"] == hex(CHAIN_ID)
            await ws.send_str(json.dumps({"jsonrpc": "2.0", "id": None, "method": "net_version"}))  # viem keep-alive
            assert await ws_recv(ws) == {"jsonrpc": "2.0", "id": None, "result": str(CHAIN_ID)}
            await ws.send_str(json.dumps([{"jsonrpc": "2.0", "id": 2, "method": "eth_blockNumber"},
                                          {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}]))
            assert [r["id"] for r in await ws_recv(ws)] == [2, 1]
            await ws.send_str("[]")
            assert (await ws_recv(ws))["error"]["message"] == "empty batch"
            await ws.send_str("nope")
            assert (await ws_recv(ws))["error"]["code"] == -32700
    run(go())


def test_sigterm_exits_zero_and_closes_ws():
    node = DevNode("--accounts", "1")

    async def go():
        async with aiohttp.ClientSession() as s, s.ws_connect(node.ws) as ws:
            assert node.stop() == 0
            msg = await ws.receive(timeout=5)
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
    run(go())
    with pytest.raises(OSError):
        node.raw({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"})
