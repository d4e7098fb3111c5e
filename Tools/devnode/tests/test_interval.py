"""Interval mining (--block-time-ms): pending state, pool rules, fee maths, timestamps."""

import time

import rlp

from conftest import GWEI, DevNode, addr, nonce, sign


def wait_mined(node, tx_hash, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = node.rpc("eth_getTransactionReceipt", tx_hash)
        if r:
            return r
        time.sleep(0.05)
    raise AssertionError("not mined")


def wait_next_block(node):
    start = node.rpc("eth_blockNumber")
    deadline = time.time() + 5
    while node.rpc("eth_blockNumber") == start and time.time() < deadline:
        time.sleep(0.02)


def test_pending_nonce_advances_and_block_holds_all(interval):
    """Pitfall 2: eth-tester's manual mining never advances the pending nonce."""
    wait_next_block(interval)  # start right after a block so all three land in the next one
    n = nonce(interval, 0, "latest")
    hashes = [interval.rpc("eth_sendRawTransaction", sign(0, nonce=n + i)) for i in range(3)]
    assert nonce(interval, 0, "pending") == n + 3
    assert nonce(interval, 0, "latest") == n
    # Pitfall 10: a pending tx by hash is a tx with null block fields, not null.
    pending = interval.rpc("eth_getTransactionByHash", hashes[1])
    assert pending["hash"] == hashes[1] and pending["blockHash"] is None and pending["blockNumber"] is None
    assert interval.rpc("eth_getTransactionReceipt", hashes[1]) is None
    pblock = interval.rpc("eth_getBlockByNumber", "pending", False)
    assert pblock["hash"] is None and pblock["transactions"] == hashes
    assert interval.rpc("eth_getBlockTransactionCountByNumber", "pending") == "0x3"
    assert interval.rpc("eth_sendRawTransaction", sign(0, nonce=n + 3)) is not None
    receipts = [wait_mined(interval, h) for h in hashes]
    assert len({r["blockNumber"] for r in receipts}) == 1
    assert [r["transactionIndex"] for r in receipts] == ["0x0", "0x1", "0x2"]
    cumulative = [int(r["cumulativeGasUsed"], 16) for r in receipts]
    assert cumulative == [21000, 42000, 63000]


def test_already_known_and_replacement(interval):
    """Pitfall 10: fee-bump replacement (>= 10 % on both caps) like geth's txpool."""
    wait_next_block(interval)
    n = nonce(interval, 1)
    raw = sign(1, nonce=n, maxFeePerGas=10 * GWEI, maxPriorityFeePerGas=GWEI)
    h = interval.rpc("eth_sendRawTransaction", raw)
    assert interval.error("eth_sendRawTransaction", raw)["message"] == "already known"
    low = sign(1, nonce=n, maxFeePerGas=10 * GWEI + 1, maxPriorityFeePerGas=GWEI + 1, value=2)
    assert interval.error("eth_sendRawTransaction", low)["message"] == "replacement transaction underpriced"
    bumped = sign(1, nonce=n, maxFeePerGas=11 * GWEI, maxPriorityFeePerGas=GWEI * 11 // 10, value=3)
    h2 = interval.rpc("eth_sendRawTransaction", bumped)
    assert interval.rpc("eth_getTransactionByHash", h) is None
    assert wait_mined(interval, h2)["status"] == "0x1"
    assert interval.rpc("eth_getTransactionByHash", h) is None
    assert interval.rpc("eth_getTransactionByHash", h2)["value"] == "0x3"


def test_fee_history_rewards(interval):
    """Pitfall 5: rewards from effective tips, weighted by gas, oldest block and order right."""
    wait_next_block(interval)
    hashes = []
    for i, tip in ((2, 1), (3, 3), (4, 2)):
        hashes.append(interval.rpc("eth_sendRawTransaction",
                                   sign(i, nonce=nonce(interval, i), maxFeePerGas=50 * GWEI,
                                        maxPriorityFeePerGas=tip * GWEI)))
    receipts = [wait_mined(interval, h) for h in hashes]
    assert len({r["blockNumber"] for r in receipts}) == 1
    number = receipts[0]["blockNumber"]
    fh = interval.rpc("eth_feeHistory", "0x2", number, [0, 34, 50, 100])
    assert fh["oldestBlock"] == hex(int(number, 16) - 1)
    prev = interval.rpc("eth_getBlockByNumber", hex(int(number, 16) - 1), False)
    blk = interval.rpc("eth_getBlockByNumber", number, False)
    assert fh["baseFeePerGas"][:2] == [prev["baseFeePerGas"], blk["baseFeePerGas"]]
    # three equal-gas txs sorted by tip 1,2,3 gwei: thresholds 0 %, 34 %, 50 %, 100 %
    assert fh["reward"][1] == [hex(GWEI), hex(2 * GWEI), hex(2 * GWEI), hex(3 * GWEI)]
    assert fh["gasUsedRatio"][1] == 63000 / int(blk["gasLimit"], 16)


def test_empty_blocks_shrink_base_fee_and_timestamps_increase():
    """Pitfalls 11 and 12 on a fast chain: +1 s per block, base fee x 7/8 per empty block."""
    node = DevNode("--block-time-ms", "50", "--accounts", "1")
    try:
        time.sleep(0.6)
        head = int(node.rpc("eth_blockNumber"), 16)
        assert head >= 4
        blocks = [node.rpc("eth_getBlockByNumber", hex(n), False) for n in range(1, head + 1)]
        stamps = [int(b["timestamp"], 16) for b in blocks]
        assert all(b > a for a, b in zip(stamps, stamps[1:]))  # strictly increasing, ahead of wall time
        fees = [int(b["baseFeePerGas"], 16) for b in blocks]
        assert all(b == a - a // 8 for a, b in zip(fees, fees[1:]))
        assert int(node.rpc("eth_gasPrice"), 16) > int(node.rpc("eth_getBlockByNumber", "pending", False)
                                                        ["baseFeePerGas"], 16)
    finally:
        assert node.stop() == 0


def test_refuse_nonce_gaps_flag():
    node = DevNode("--accounts", "1", "--refuse-nonce-gaps")
    try:
        assert node.error("eth_sendRawTransaction", sign(0, nonce=5))["message"] == "nonce too high"
    finally:
        node.stop()


def test_invalid_sender(auto):
    fields = rlp.decode(bytes.fromhex(sign(6, nonce=nonce(auto, 6))[4:]))
    fields[-2] = b""  # r = 0: no public key can be recovered
    raw = "0x02" + rlp.encode(fields).hex()
    assert auto.error("eth_sendRawTransaction", raw) == {"code": -32000, "message": "invalid sender"}


def test_future_nonce_queue_automine(auto):
    """Pitfall 10: geth queues a gapped nonce and mines it once the gap closes."""
    n = nonce(auto, 7)
    later = auto.rpc("eth_sendRawTransaction", sign(7, nonce=n + 1))
    assert auto.rpc("eth_getTransactionReceipt", later) is None
    assert auto.rpc("eth_getTransactionByHash", later)["blockHash"] is None
    assert nonce(auto, 7) == n  # geth: queued txs do not count for the pending nonce
    first = auto.rpc("eth_sendRawTransaction", sign(7, nonce=n))
    assert auto.rpc("eth_getTransactionReceipt", first)["status"] == "0x1"
    assert auto.rpc("eth_getTransactionReceipt", later)["status"] == "0x1"
    assert nonce(auto, 7, "latest") == n + 2
