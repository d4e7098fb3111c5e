"""One test per eth-tester pitfall of REFERENCE §6 not already covered elsewhere.

Covered in other files:
  1 chain id / pre-EIP-155 ......... test_methods.py::test_chain_id_must_match, test_pre_eip155_refused
  2 manual mining nonce ............ test_interval.py::test_pending_nonce_advances_and_block_holds_all
  5 fee history .................... test_interval.py::test_fee_history_rewards
  6 full blocks with typed txs ..... test_methods.py::test_legacy_and_access_list_txs_in_full_blocks
  10 queue/replacement/pending tx .. test_interval.py::test_already_known_and_replacement,
                                     test_future_nonce_queue_automine, test_pending_nonce_advances...
  11, 12 timestamps, base fee ...... test_interval.py::test_empty_blocks_shrink_base_fee_and_timestamps_increase
"""

import asyncio
import json
import re
import time

import aiohttp
from eth_account import Account
from eth_utils import to_checksum_address

from conftest import CHAIN_ID, GWEI, DevNode, key, run, sign, ws_recv


def test_3_pending_block_throughput():
    """Pitfall 3: with one pending block built once per block, hundreds of txs/s go through.
    The bar is low on purpose (CI shares 2 cores); bench.py measures the real figure."""
    node = DevNode("--block-time-ms", "100", "--accounts", "4")
    try:
        raws = []
        for i in range(4):
            acct = Account.from_key(key(i))
            for n in range(100):
                raws.append("0x" + acct.sign_transaction({
                    "type": 2, "chainId": CHAIN_ID, "nonce": n, "to": to_checksum_address("0x" + "11" * 20),
                    "value": 1, "gas": 21000, "maxFeePerGas": 10 * GWEI, "maxPriorityFeePerGas": GWEI,
                }).raw_transaction.hex())

        async def go():
            async with aiohttp.ClientSession() as s, s.ws_connect(node.ws) as ws:
                t0 = time.monotonic()
                for i, raw in enumerate(raws):
                    await ws.send_str(json.dumps({"jsonrpc": "2.0", "id": i, "method": "eth_sendRawTransaction",
                                                  "params": [raw]}))
                answers = [await ws_recv(ws) for _ in raws]
                assert all("result" in a for a in answers), [a for a in answers if "error" in a][:1]
                while True:
                    counts = [int(node.rpc("eth_getTransactionCount", Account.from_key(key(i)).address, "latest"), 16)
                              for i in range(4)]
                    if counts == [100] * 4:
                        return time.monotonic() - t0
                    assert time.monotonic() - t0 < 20
                    await asyncio.sleep(0.05)

        elapsed = run(go())
        assert len(raws) / elapsed > 100, f"{len(raws) / elapsed:.0f} tx/s"
        # blocks hold many txs each, in nonce order
        head = int(node.rpc("eth_blockNumber"), 16)
        sizes = [len(node.rpc("eth_getBlockByNumber", hex(n), False)["transactions"]) for n in range(1, head + 1)]
        assert sum(sizes) == 400 and max(sizes) > 10
    finally:
        node.stop()


def test_4_lookups_use_the_index_after_cache_eviction():
    """Pitfall 4: old txs are found through py-evm's tx index, not by scanning; the
    rendered-block cache is shrunk to 2 so old blocks are re-rendered from the db."""
    node = DevNode("--accounts", "1", env={"DEVNODE_RECORD_CACHE_BLOCKS": "2"})
    try:
        hashes = [node.rpc("eth_sendRawTransaction", sign(0, nonce=n)) for n in range(40)]
        t0 = time.monotonic()
        receipt = node.rpc("eth_getTransactionReceipt", hashes[0])
        tx = node.rpc("eth_getTransactionByHash", hashes[0])
        assert time.monotonic() - t0 < 1
        assert receipt["blockNumber"] == "0x1" and receipt["transactionHash"] == hashes[0]
        assert tx["blockHash"] == receipt["blockHash"] and tx["from"] == Account.from_key(key(0)).address.lower()
        assert node.rpc("eth_getTransactionReceipt", hashes[39])["blockNumber"] == hex(40)
        assert node.rpc("eth_getTransactionReceipt", "0x" + "00" * 32) is None
        assert node.rpc("eth_getTransactionByHash", "0x" + "00" * 32) is None
    finally:
        node.stop()


def test_7_call_and_estimate_without_from(auto):
    """Pitfall 7: eth-tester fails these with "cannot afford"; we default `from` to a funded dev account."""
    to = "0x" + "55" * 20
    assert auto.rpc("eth_call", {"to": to}) == "0x"
    assert auto.rpc("eth_estimateGas", {"to": to, "value": hex(10**18)}) == hex(21000)
    # Prague (EIP-7623): calldata floor 21000 + 10 * (1 zero + 4 * 1 non-zero) beats 21000 + 4 + 16
    assert auto.rpc("eth_estimateGas", {"to": to, "data": "0x00ff"}) == hex(21050)


def test_8_output_is_hex_and_camel_case(auto):
    """Pitfall 8: no snake_case keys and no JSON numbers anywhere in block/tx/receipt output."""
    h = auto.rpc("eth_sendRawTransaction", sign(6, nonce=int(auto.rpc("eth_getTransactionCount",
                                                                       Account.from_key(key(6)).address,
                                                                       "pending"), 16)))
    receipt = auto.rpc("eth_getTransactionReceipt", h)
    block = auto.rpc("eth_getBlockByNumber", receipt["blockNumber"], True)

    def walk(v):
        if isinstance(v, dict):
            for k, x in v.items():
                assert "_" not in k, k
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        else:
            assert v is None or isinstance(v, (str, bool)), v
            if isinstance(v, str):
                assert re.match(r"^0x[0-9a-f]*$", v), v
    walk(receipt)
    walk(block)


def test_9_busy_connection_does_not_starve_notifications(interval):
    """Pitfall 9: while one client pipelines a flood of requests, another still gets newHeads."""
    async def go():
        async with aiohttp.ClientSession() as s, s.ws_connect(interval.ws) as listener, \
                s.ws_connect(interval.ws) as flooder:
            await listener.send_str(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe",
                                                "params": ["newHeads"]}))
            await ws_recv(listener)
            heads = []

            async def listen():
                while True:
                    await ws_recv(listener, timeout=30)
                    heads.append(time.monotonic())

            task = asyncio.ensure_future(listen())
            request = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_estimateGas",
                                  "params": [{"data": "0x4660005260206000f3"}]})
            t0 = time.monotonic()
            count = 0
            while time.monotonic() - t0 < 1.5:  # ~5 block times of back-to-back pipelined work
                for _ in range(50):
                    await flooder.send_str(request)
                for _ in range(50):
                    await ws_recv(flooder)
                count += 50
            t1 = time.monotonic()
            task.cancel()
            during = [t for t in heads if t0 < t < t1]
            assert len(during) >= 2, (len(during), count)
    run(go())
