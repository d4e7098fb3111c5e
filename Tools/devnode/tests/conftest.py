"""Fixtures: real devnode subprocesses on port 0, plus small JSON-RPC helpers.

Nodes are started once per session (each start costs ~1.5 s of imports) and killed
by pid at the end.
"""

import asyncio
import json
import os
import sys
import urllib.request

import aiohttp
import pytest
from eth_account import Account
from eth_utils import to_checksum_address

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
# servertools (Tools/shared, stdlib only): the server-subprocess helpers every tool's tests share.
sys.path.insert(0, os.path.join(os.path.dirname(ROOT), "shared"))
import servertools  # noqa: E402
from evmnode.accounts import dev_private_key  # noqa: E402

CHAIN_ID = 1337
GWEI = 10**9
EXTRA_FUND = "0x" + "ab" * 20
EXTRA_FUND_2 = "0x" + "AB" * 19 + "ac"  # mixed case is fine, as in geth
FILE_FUND = "0x" + "cd" * 20


class DevNode(servertools.ServerProcess):
    def __init__(self, *args, env=None):
        super().__init__([sys.executable, os.path.join(ROOT, "devnode.py"), "--port", "0", *args],
                         env={**os.environ, **(env or {})})
        self.http = f"http://127.0.0.1:{self.port}/"
        self.ws = f"ws://127.0.0.1:{self.port}/"

    def parse_ready(self, line):
        if not line.startswith("devnode listening on http://127.0.0.1:"):
            raise ValueError(line)
        self.port = int(line.split("http://127.0.0.1:")[1].split(" ")[0])

    def raw(self, payload, content_type="application/json"):
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        req = urllib.request.Request(self.http, data=body, headers={"Content-Type": content_type})
        with urllib.request.urlopen(req, timeout=30) as resp:
            text = resp.read()
        return json.loads(text) if text else None

    def call(self, method, *params):
        """Full response object (result or error)."""
        return self.raw({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})

    def rpc(self, method, *params):
        resp = self.call(method, *params)
        assert "error" not in resp, resp
        return resp["result"]

    def error(self, method, *params):
        resp = self.call(method, *params)
        assert "error" in resp, resp
        return resp["error"]


def key(i):
    return dev_private_key(i)


def addr(i):
    return Account.from_key(key(i)).address.lower()


def sign(i, **fields):
    """EIP-1559 transfer by default; pass gasPrice for legacy or accessList+gasPrice for type 1."""
    tx = {"chainId": CHAIN_ID, "to": "0x" + "22" * 20, "value": 1, "gas": 21000}
    if "gasPrice" not in fields:
        tx.update(type=2, maxFeePerGas=10 * GWEI, maxPriorityFeePerGas=GWEI)
    tx.update(fields)
    if tx.get("chainId") is None:
        del tx["chainId"]
    if tx.get("to") is None:
        del tx["to"]  # contract creation
    else:
        tx["to"] = to_checksum_address(tx["to"])  # eth-account insists on EIP-55
    return "0x" + Account.from_key(key(i)).sign_transaction(tx).raw_transaction.hex()


def nonce(node, i, tag="pending"):
    return int(node.rpc("eth_getTransactionCount", addr(i), tag), 16)


def run(coro):
    return asyncio.run(coro)


async def ws_request(ws, id_, method, *params):
    await ws.send_str(json.dumps({"jsonrpc": "2.0", "id": id_, "method": method, "params": list(params)}))


async def ws_recv(ws, timeout=10):
    msg = await ws.receive(timeout=timeout)
    assert msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY), msg
    return json.loads(msg.data)


# Hand-assembled EVM code (no solc here).
TOPIC0 = "0x" + "aa" * 32
# runtime: LOG2(mem[0:0], topic0=TOPIC0, topic1=calldata[0:32]); STOP
LOGGER_RUNTIME = "600035" + "7f" + "aa" * 32 + "60006000a200"
# code that returns CHAINID as a 32-byte word (usable as eth_call initcode)
CHAINID_CODE = "0x4660005260206000f3"
# code that reverts with Error("nope"): CODECOPY the 100 payload bytes behind the 12 code bytes, REVERT
_NOPE = ("08c379a0" + (32).to_bytes(32, "big").hex() + (4).to_bytes(32, "big").hex() + b"nope".hex().ljust(64, "0"))
REVERT_CODE = "0x" + "6064600c60003960646000fd" + _NOPE


def initcode(runtime_hex):
    n = len(runtime_hex) // 2
    return "0x" + f"60{n:02x}600c60003960{n:02x}6000f3" + runtime_hex


@pytest.fixture(scope="session")
def fund_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("fund") / "addresses.txt"
    p.write_text(f"# extra accounts\n{FILE_FUND}\n\n")
    return str(p)


@pytest.fixture(scope="session")
def auto(fund_file):
    """Automine node (one block per tx)."""
    with DevNode("--chain-id", str(CHAIN_ID), "--accounts", "10", "--fund", f"{EXTRA_FUND},{EXTRA_FUND_2}",
                 "--fund-file", fund_file, "--balance-eth", "1000") as node:
        yield node


@pytest.fixture(scope="session")
def interval():
    """Interval-mining node: a block every 300 ms, pending txs wait for it."""
    with DevNode("--block-time-ms", "300", "--accounts", "10") as node:
        yield node
