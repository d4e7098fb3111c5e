"""eth_subscribe / eth_unsubscribe over WebSocket: newHeads, logs with filters, ordering."""

import asyncio
import json
import re

import aiohttp

from conftest import LOGGER_RUNTIME, TOPIC0, initcode, nonce, run, sign, ws_recv

SUB_ID = re.compile(r"^0x[0-9a-f]{32}$")


def deploy_logger(node, i):
    h = node.rpc("eth_sendRawTransaction", sign(i, nonce=nonce(node, i), to=None, value=0, gas=200000,
                                                data=initcode(LOGGER_RUNTIME)))
    return node.rpc("eth_getTransactionReceipt", h)["contractAddress"]


def test_new_heads_and_unsubscribe(auto):
    async def go():
        async with aiohttp.ClientSession() as s, s.ws_connect(auto.ws) as ws:
            await ws.send_str(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newHeads"]}))
            sub = (await ws_recv(ws))["result"]
            assert SUB_ID.match(sub)
            h = auto.rpc("eth_sendRawTransaction", sign(8, nonce=nonce(auto, 8)))
            note = await ws_recv(ws)
            assert note["jsonrpc"] == "2.0" and note["method"] == "eth_subscription" and "id" not in note
            assert note["params"]["subscription"] == sub
            head = note["params"]["result"]
            receipt = auto.rpc("eth_getTransactionReceipt", h)
            assert head["hash"] == receipt["blockHash"] and head["number"] == receipt["blockNumber"]
            assert "transactions" not in head and "baseFeePerGas" in head and "parentHash" in head
            await ws.send_str(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "eth_unsubscribe", "params": [sub]}))
            assert (await ws_recv(ws)) == {"jsonrpc": "2.0", "id": 2, "result": True}
            await ws.send_str(json.dumps({"jsonrpc": "2.0", "id": 3, "method": "eth_unsubscribe", "params": [sub]}))
            assert (await ws_recv(ws))["error"] == {"code": -32000, "message": "subscription not found"}
            await ws.send_str(json.dumps({"jsonrpc": "2.0", "id": 4, "method": "eth_subscribe", "params": ["x"]}))
            assert (await ws_recv(ws))["error"] == {"code": -32601, "message": 'no "x" subscription in eth namespace'}
            auto.rpc("eth_sendRawTransaction", sign(8, nonce=nonce(auto, 8)))  # no notification may follow now
            await ws.send_str(json.dumps({"jsonrpc": "2.0", "id": 5, "method": "eth_chainId"}))
            assert (await ws_recv(ws))["id"] == 5
    run(go())


def test_logs_filters_one_log_per_notification(auto):
    contract = deploy_logger(auto, 9)
    other = deploy_logger(auto, 9)
    t1, t2 = "0x" + "00" * 31 + "0a", "0x" + "00" * 31 + "0b"

    async def go():
        async with aiohttp.ClientSession() as s, s.ws_connect(auto.ws) as ws:
            await ws.send_str(json.dumps([
                {"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["logs", {"address": contract}]},
                {"jsonrpc": "2.0", "id": 2, "method": "eth_subscribe",
                 "params": ["logs", {"topics": [TOPIC0, [t2]]}]},
                {"jsonrpc": "2.0", "id": 3, "method": "eth_subscribe", "params": ["logs"]},
            ]))
            by_addr, by_topic, everything = [r["result"] for r in await ws_recv(ws)]
            n = nonce(auto, 9)
            auto.rpc("eth_sendRawTransaction", sign(9, nonce=n, to=contract, value=0, gas=60000, data=t1))
            auto.rpc("eth_sendRawTransaction", sign(9, nonce=n + 1, to=other, value=0, gas=60000, data=t2))
            got = {}
            for _ in range(4):  # tx1 -> by_addr, everything; tx2 -> by_topic, everything
                note = (await ws_recv(ws))["params"]
                got.setdefault(note["subscription"], []).append(note["result"])
            assert [log["address"] for log in got[by_addr]] == [contract]
            assert [log["topics"][1] for log in got[by_topic]] == [t2]
            assert [log["topics"][1] for log in got[everything]] == [t1, t2]
            assert isinstance(got[everything][0], dict) and got[everything][0]["removed"] is False
    run(go())


def test_no_notification_before_subscribe_response(auto):
    """A batch that subscribes and then mines a block: the response must arrive first."""
    async def go():
        async with aiohttp.ClientSession() as s, s.ws_connect(auto.ws) as ws:
            await ws.send_str(json.dumps([
                {"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newHeads"]},
                {"jsonrpc": "2.0", "id": 2, "method": "eth_sendRawTransaction",
                 "params": [sign(8, nonce=nonce(auto, 8))]},
            ]))
            first = await ws_recv(ws)
            assert isinstance(first, list) and first[0]["id"] == 1 and "result" in first[1]
            note = await ws_recv(ws)
            assert note["params"]["subscription"] == first[0]["result"]
    run(go())


def test_devnode_subscriptions_counts_live_subscriptions(auto):
    async def go():
        async with aiohttp.ClientSession() as s, s.ws_connect(auto.ws) as a, s.ws_connect(auto.ws) as b:
            before = auto.rpc("devnode_subscriptions").get("newHeads", 0)
            for ws in (a, b):
                await ws.send_str(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newHeads"]}))
                assert SUB_ID.match((await ws_recv(ws))["result"])
            assert auto.rpc("devnode_subscriptions").get("newHeads", 0) == before + 2
        # Subscriptions end with their connection.
        for _ in range(50):
            if auto.rpc("devnode_subscriptions").get("newHeads", 0) == before:
                break
            await asyncio.sleep(0.05)
        assert auto.rpc("devnode_subscriptions").get("newHeads", 0) == before

    run(go())
