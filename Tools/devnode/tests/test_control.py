"""Test-control methods: devnode_setMinerTip / --miner-tip-wei (stuck txs), devnode_dropPending,
devnode_txpoolStatus / txpool_status. They run on nodes of their own, since the miner's tip is
node-wide; each test leaves its node with tip 0 and an empty pool."""

import json
import time

import aiohttp
import pytest
from eth_utils import keccak

from conftest import GWEI, DevNode, addr, nonce, run, sign, ws_recv
from evmnode import config


@pytest.fixture(scope="module")
def _auto_node():
    with DevNode("--accounts", "10") as node:
        yield node


@pytest.fixture(scope="module")
def _interval_node():
    with DevNode("--block-time-ms", "300", "--accounts", "10") as node:
        yield node


def _reset(node):
    node.rpc("devnode_setMinerTip", "0x0")
    node.rpc("devnode_dropPending")


@pytest.fixture
def auto(_auto_node):
    """Automine node (one block per tx), reset after the test."""
    yield _auto_node
    _reset(_auto_node)


@pytest.fixture
def interval(_interval_node):
    """Interval node (a block every 300 ms), reset after the test."""
    yield _interval_node
    _reset(_interval_node)


def status(node, method="devnode_txpoolStatus"):
    return {k: int(v, 16) for k, v in node.rpc(method).items()}


def receipt(node, tx_hash):
    return node.rpc("eth_getTransactionReceipt", tx_hash)


def send(node, raw):
    return node.rpc("eth_sendRawTransaction", raw)


def pending_base_fee(node):
    return int(node.rpc("eth_getBlockByNumber", "pending", False)["baseFeePerGas"], 16)


def head(node):
    return int(node.rpc("eth_blockNumber"), 16)


def wait_mined(node, tx_hash, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = receipt(node, tx_hash)
        if r:
            return r
        time.sleep(0.05)
    raise AssertionError(f"{tx_hash} not mined")


def wait_blocks(node, count):
    target = head(node) + count
    deadline = time.time() + 10
    while head(node) < target:
        assert time.time() < deadline, "no blocks"
        time.sleep(0.02)


def batch(node, *calls):
    """One HTTP batch, answered in order with no block mined in between (the node is single-threaded)."""
    answers = node.raw([{"jsonrpc": "2.0", "id": i, "method": m, "params": list(p)} for i, (m, *p) in enumerate(calls)])
    assert all("error" not in a for a in answers), answers
    return [a["result"] for a in answers]


# ---------------------------------------------------------------- params and flag

def test_params(auto):
    assert auto.rpc("devnode_setMinerTip", hex(GWEI)) is True
    assert auto.rpc("devnode_setMinerTip", "0x0") is True
    for bad in ([], ["0x01"], [5], ["0x1", "0x2"], ["12"]):
        assert auto.error("devnode_setMinerTip", *bad)["code"] == -32602, bad
    assert auto.error("devnode_dropPending", "0x1")["code"] == -32602
    assert auto.error("txpool_status", "0x1")["code"] == -32602
    assert auto.rpc("devnode_dropPending") == 0
    assert auto.rpc("devnode_txpoolStatus") == auto.rpc("txpool_status") == {"pending": "0x0", "queued": "0x0"}


def test_miner_tip_flag():
    assert config.parse([]).miner_tip_wei == 0
    assert config.parse(["--miner-tip-wei", "7"]).miner_tip_wei == 7
    with pytest.raises(SystemExit):
        config.parse(["--miner-tip-wei", "-1"])
    node = DevNode("--accounts", "2", "--miner-tip-wei", str(2 * GWEI))
    try:
        stuck = send(node, sign(0, nonce=0))  # 1 gwei tip: accepted, unlike --min-tip-wei
        assert receipt(node, stuck) is None and head(node) == 0
        assert nonce(node, 0) == 1 and nonce(node, 0, "latest") == 0
        paid = send(node, sign(1, nonce=0, maxPriorityFeePerGas=2 * GWEI))
        assert receipt(node, paid)["blockNumber"] == "0x1"
        assert receipt(node, stuck) is None and status(node) == {"pending": 1, "queued": 0}
        assert node.rpc("devnode_setMinerTip", "0x0") is True
        assert receipt(node, stuck)["status"] == "0x1"
    finally:
        node.stop()


# ---------------------------------------------------------------- automine

def test_stuck_tx_automine(auto):
    assert auto.rpc("devnode_setMinerTip", hex(2 * GWEI)) is True
    n = nonce(auto, 0, "latest")
    h0 = send(auto, sign(0, nonce=n))  # 1 gwei tip
    assert receipt(auto, h0) is None
    tx = auto.rpc("eth_getTransactionByHash", h0)
    assert tx["hash"] == h0 and tx["blockNumber"] is None and tx["blockHash"] is None and tx["nonce"] == hex(n)
    assert nonce(auto, 0) == n + 1 and nonce(auto, 0, "latest") == n  # stuck counts as pending, as in geth
    assert auto.error("eth_sendRawTransaction", sign(0, nonce=n))["message"] == "already known"
    h1 = send(auto, sign(0, nonce=n + 1, maxPriorityFeePerGas=3 * GWEI))  # pays, but waits behind nonce n
    assert receipt(auto, h1) is None and nonce(auto, 0) == n + 2
    assert status(auto) == status(auto, "txpool_status") == {"pending": 2, "queued": 0}
    # Other senders still get blocks, and those blocks skip the stuck txs. A tip equal to the miner's is enough.
    other = send(auto, sign(1, nonce=nonce(auto, 1), maxPriorityFeePerGas=2 * GWEI))
    mined = receipt(auto, other)
    assert mined["status"] == "0x1"
    assert auto.rpc("eth_getBlockByNumber", mined["blockNumber"], False)["transactions"] == [other]
    assert auto.rpc("eth_getBlockByNumber", "pending", False)["transactions"] == []
    assert receipt(auto, h0) is None and receipt(auto, h1) is None
    # Lowering the tip mines them at once, in nonce order.
    assert auto.rpc("devnode_setMinerTip", hex(GWEI)) is True
    r0, r1 = receipt(auto, h0), receipt(auto, h1)
    assert r0["status"] == r1["status"] == "0x1"
    assert int(r0["blockNumber"], 16) < int(r1["blockNumber"], 16)
    assert nonce(auto, 0, "latest") == n + 2 and status(auto) == {"pending": 0, "queued": 0}


def test_effective_tip_includes_base_fee(auto):
    """EIP-1559: min(tipCap, feeCap - baseFee); legacy and 2930: gasPrice - baseFee."""
    tip = 2 * GWEI
    auto.rpc("devnode_setMinerTip", hex(tip))
    base = pending_base_fee(auto)
    assert 0 < base <= GWEI
    capped = send(auto, sign(2, nonce=nonce(auto, 2), maxFeePerGas=tip, maxPriorityFeePerGas=tip))
    assert receipt(auto, capped) is None  # tip cap is 2 gwei, but only 2 gwei - base is left for the miner
    ok = send(auto, sign(3, nonce=nonce(auto, 3), maxFeePerGas=tip + base, maxPriorityFeePerGas=tip))
    assert receipt(auto, ok)["status"] == "0x1"
    base = pending_base_fee(auto)
    low = send(auto, sign(4, nonce=nonce(auto, 4), gasPrice=base + tip - 1))
    low_al = send(auto, sign(5, nonce=nonce(auto, 5), gasPrice=base + tip - 1, accessList=[], gas=30000))
    assert receipt(auto, low) is None and receipt(auto, low_al) is None
    assert status(auto)["pending"] == 3
    legacy = send(auto, sign(6, nonce=nonce(auto, 6), gasPrice=base + tip))
    assert receipt(auto, legacy)["status"] == "0x1"
    # That block lowered the base fee: gasPrice - baseFee of the two 1-wei-short txs now reaches the tip,
    # so the next blocks take them; the capped EIP-1559 tx (2 gwei - baseFee) stays stuck.
    assert receipt(auto, low)["status"] == receipt(auto, low_al)["status"] == "0x1"
    assert receipt(auto, capped) is None and status(auto)["pending"] == 1


def test_base_fee_drop_releases_stuck_tx(auto):
    """The miner re-checks each block: when the base fee falls, feeCap - baseFee grows past the tip."""
    tip = GWEI
    auto.rpc("devnode_setMinerTip", hex(tip))
    base = pending_base_fee(auto)
    assert base > 1000  # far from the 7-wei floor, so the next block lowers it by about 1/8
    cap = base + tip - base // 16  # leaves the miner tip - base/16
    h = send(auto, sign(7, nonce=nonce(auto, 7), maxFeePerGas=cap, maxPriorityFeePerGas=cap))
    assert receipt(auto, h) is None
    other = send(auto, sign(8, nonce=nonce(auto, 8), maxPriorityFeePerGas=2 * GWEI))
    assert pending_base_fee(auto) < base
    r = receipt(auto, h)
    assert r["status"] == "0x1" and int(r["blockNumber"], 16) == int(receipt(auto, other)["blockNumber"], 16) + 1


def test_replacement_unsticks_automine(auto):
    auto.rpc("devnode_setMinerTip", hex(3 * GWEI))
    n = nonce(auto, 9)
    h0 = send(auto, sign(9, nonce=n))  # maxFee 10 gwei, tip 1 gwei
    h1 = send(auto, sign(9, nonce=n + 1, maxPriorityFeePerGas=5 * GWEI))
    low = sign(9, nonce=n, maxFeePerGas=10 * GWEI + GWEI // 20, maxPriorityFeePerGas=GWEI + GWEI // 20, value=2)
    assert auto.error("eth_sendRawTransaction", low)["message"] == "replacement transaction underpriced"
    # +10 % on both caps replaces it, but a 1.1 gwei tip still does not pay the miner.
    h0b = send(auto, sign(9, nonce=n, maxFeePerGas=11 * GWEI, maxPriorityFeePerGas=GWEI * 11 // 10, value=3))
    assert auto.rpc("eth_getTransactionByHash", h0) is None
    assert auto.rpc("eth_getTransactionByHash", h0b)["blockNumber"] is None and receipt(auto, h0b) is None
    assert status(auto)["pending"] == 2 and nonce(auto, 9) == n + 2
    # A replacement that pays is mined on arrival, and the nonce waiting behind it follows.
    h0c = send(auto, sign(9, nonce=n, maxFeePerGas=20 * GWEI, maxPriorityFeePerGas=4 * GWEI, value=4))
    assert receipt(auto, h0c)["status"] == "0x1" and receipt(auto, h1)["status"] == "0x1"
    assert auto.rpc("eth_getTransactionByHash", h0b) is None
    assert auto.rpc("eth_getTransactionByHash", h0c)["value"] == "0x4"
    assert nonce(auto, 9, "latest") == n + 2 and status(auto) == {"pending": 0, "queued": 0}


def test_queued_nonce_joins_stuck_run(auto):
    auto.rpc("devnode_setMinerTip", hex(2 * GWEI))
    n = nonce(auto, 0)
    hashes = [send(auto, sign(0, nonce=n))]
    later = send(auto, sign(0, nonce=n + 2, maxPriorityFeePerGas=3 * GWEI))
    assert status(auto) == {"pending": 1, "queued": 1} and nonce(auto, 0) == n + 1
    hashes.append(send(auto, sign(0, nonce=n + 1, maxPriorityFeePerGas=3 * GWEI)))  # closes the gap
    hashes.append(later)
    assert status(auto) == {"pending": 3, "queued": 0} and nonce(auto, 0) == n + 3
    assert all(receipt(auto, h) is None for h in hashes)
    auto.rpc("devnode_setMinerTip", "0x0")
    blocks = [int(receipt(auto, h)["blockNumber"], 16) for h in hashes]
    assert blocks == sorted(blocks) and nonce(auto, 0, "latest") == n + 3


def test_drop_pending_automine(auto):
    auto.rpc("devnode_setMinerTip", hex(2 * GWEI))
    n = nonce(auto, 1, "latest")
    raw0 = sign(1, nonce=n)
    h0 = send(auto, raw0)
    send(auto, sign(1, nonce=n + 1))
    send(auto, sign(1, nonce=n + 3))  # queued behind a gap
    assert status(auto) == {"pending": 2, "queued": 1} and nonce(auto, 1) == n + 2
    assert auto.rpc("devnode_dropPending") == 3
    assert status(auto) == {"pending": 0, "queued": 0}
    assert nonce(auto, 1) == n and auto.rpc("eth_getTransactionByHash", h0) is None
    assert auto.rpc("devnode_dropPending") == 0
    auto.rpc("devnode_setMinerTip", "0x0")
    assert send(auto, raw0) == h0  # the very same tx is new again
    assert receipt(auto, h0)["status"] == "0x1" and nonce(auto, 1) == n + 1


def test_methods_over_websocket(auto):
    calls = [("devnode_setMinerTip", [hex(5 * GWEI)]), ("eth_sendRawTransaction", [sign(2, nonce=nonce(auto, 2))]),
             ("devnode_txpoolStatus", []), ("txpool_status", []), ("devnode_dropPending", []),
             ("devnode_setMinerTip", ["0x0"])]

    async def go():
        async with aiohttp.ClientSession() as s, s.ws_connect(auto.ws) as ws:
            await ws.send_str(json.dumps([{"jsonrpc": "2.0", "id": i, "method": m, "params": p}
                                          for i, (m, p) in enumerate(calls)]))
            return [a["result"] for a in await ws_recv(ws)]

    tip_set, _hash, status_a, status_b, dropped, tip_reset = run(go())
    assert tip_set is True and tip_reset is True
    assert status_a == status_b == {"pending": "0x1", "queued": "0x0"}
    assert dropped == 1


# ---------------------------------------------------------------- interval mining

def test_stuck_tx_interval(interval):
    interval.rpc("devnode_setMinerTip", hex(2 * GWEI))
    n = nonce(interval, 0, "latest")
    h0 = send(interval, sign(0, nonce=n))
    h1 = send(interval, sign(0, nonce=n + 1, maxPriorityFeePerGas=3 * GWEI))
    other = send(interval, sign(1, nonce=nonce(interval, 1), maxPriorityFeePerGas=3 * GWEI))
    wait_mined(interval, other)
    wait_blocks(interval, 2)
    assert receipt(interval, h0) is None and receipt(interval, h1) is None
    pending = interval.rpc("eth_getBlockByNumber", "pending", False)["transactions"]
    assert h0 not in pending and h1 not in pending
    assert nonce(interval, 0) == n + 2 and nonce(interval, 0, "latest") == n
    assert status(interval) == {"pending": 2, "queued": 0}
    interval.rpc("devnode_setMinerTip", "0x0")
    r0, r1 = wait_mined(interval, h0), wait_mined(interval, h1)
    assert (int(r0["blockNumber"], 16), int(r0["transactionIndex"], 16)) < \
        (int(r1["blockNumber"], 16), int(r1["transactionIndex"], 16))


def test_raising_tip_takes_txs_out_of_pending_block(interval):
    n = nonce(interval, 2)
    raw = sign(2, nonce=n)  # 1 gwei tip
    h = "0x" + keccak(bytes.fromhex(raw[2:])).hex()
    before, _tip, after, pool, count = batch(
        interval, ("eth_sendRawTransaction", raw), ("eth_getBlockByNumber", "pending", False),
        ("devnode_setMinerTip", hex(2 * GWEI)), ("eth_getBlockByNumber", "pending", False),
        ("devnode_txpoolStatus",), ("eth_getTransactionCount", addr(2), "pending"))[1:]
    assert h in before["transactions"] and h not in after["transactions"]
    assert pool == {"pending": "0x1", "queued": "0x0"} and count == hex(n + 1)
    wait_blocks(interval, 2)
    assert receipt(interval, h) is None
    bumped = send(interval, sign(2, nonce=n, maxFeePerGas=11 * GWEI, maxPriorityFeePerGas=3 * GWEI))
    assert wait_mined(interval, bumped)["status"] == "0x1"
    assert interval.rpc("eth_getTransactionByHash", h) is None


def test_drop_pending_interval(interval):
    n = nonce(interval, 3, "latest")
    raw = sign(3, nonce=n)
    h, block, dropped, pool, count = batch(
        interval, ("eth_sendRawTransaction", raw), ("eth_getBlockByNumber", "pending", False),
        ("devnode_dropPending",), ("devnode_txpoolStatus",), ("eth_getTransactionCount", addr(3), "pending"))
    assert h in block["transactions"]
    assert dropped == 1 and pool == {"pending": "0x0", "queued": "0x0"} and count == hex(n)
    assert interval.rpc("eth_getBlockByNumber", "pending", False)["transactions"] == []
    wait_blocks(interval, 1)
    assert receipt(interval, h) is None and interval.rpc("eth_getTransactionByHash", h) is None
    assert send(interval, raw) == h
    assert wait_mined(interval, h)["status"] == "0x1"
