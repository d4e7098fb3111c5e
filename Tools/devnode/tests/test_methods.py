"""Every read/write method on an automine node, output shapes, and geth's error strings."""

import re

from conftest import (CHAIN_ID, CHAINID_CODE, EXTRA_FUND, EXTRA_FUND_2, FILE_FUND, GWEI, LOGGER_RUNTIME, REVERT_CODE, TOPIC0,
                      addr, initcode, key, nonce, sign)

HEXQ = re.compile(r"^0x(0|[1-9a-f][0-9a-f]*)$")


def is_q(v):
    return isinstance(v, str) and HEXQ.match(v)


def test_chain_info(auto):
    assert auto.rpc("eth_chainId") == "0x539"
    assert auto.rpc("net_version") == "1337"
    assert auto.rpc("web3_clientVersion").startswith("devnode/")
    assert is_q(auto.rpc("eth_blockNumber"))
    accounts = auto.rpc("eth_accounts")
    assert len(accounts) == 10 and accounts[0] == addr(0)
    base = int(auto.rpc("eth_getBlockByNumber", "pending", False)["baseFeePerGas"], 16)
    assert int(auto.rpc("eth_gasPrice"), 16) == base + GWEI
    assert auto.rpc("eth_maxPriorityFeePerGas") == hex(GWEI)


def test_genesis_funding(auto):
    want = hex(1000 * 10**18)
    assert auto.rpc("eth_getBalance", addr(9), "latest") == want
    assert auto.rpc("eth_getBalance", EXTRA_FUND) == want
    assert auto.rpc("eth_getBalance", EXTRA_FUND_2.lower(), "latest") == want
    assert auto.rpc("eth_getBalance", FILE_FUND, "earliest") == want
    assert auto.rpc("eth_getBalance", "0x" + "01" * 20) == "0x0"
    assert auto.error("eth_getBalance", addr(0), "0xffffff") == {"code": -32000, "message": "header not found"}


def test_eip1559_transfer_automined(auto):
    before = int(auto.rpc("eth_blockNumber"), 16)
    n = nonce(auto, 1)
    h = auto.rpc("eth_sendRawTransaction", sign(1, nonce=n, value=12345))
    receipt = auto.rpc("eth_getTransactionReceipt", h)  # exists as soon as the send returns
    assert set(receipt) >= {"transactionHash", "transactionIndex", "blockHash", "blockNumber", "from", "to",
                            "cumulativeGasUsed", "gasUsed", "effectiveGasPrice", "contractAddress", "logs",
                            "logsBloom", "status", "type"}
    assert receipt["status"] == "0x1" and receipt["type"] == "0x2" and receipt["gasUsed"] == hex(21000)
    assert receipt["from"] == addr(1) and receipt["to"] == "0x" + "22" * 20 and receipt["contractAddress"] is None
    assert int(receipt["blockNumber"], 16) == before + 1 and receipt["transactionIndex"] == "0x0"
    block = auto.rpc("eth_getBlockByNumber", receipt["blockNumber"], True)
    base = int(block["baseFeePerGas"], 16)
    assert int(receipt["effectiveGasPrice"], 16) == min(10 * GWEI, base + GWEI)
    tx = auto.rpc("eth_getTransactionByHash", h)
    assert tx == block["transactions"][0]
    assert tx["hash"] == h and tx["nonce"] == hex(n) and tx["value"] == hex(12345) and tx["type"] == "0x2"
    assert tx["maxFeePerGas"] == hex(10 * GWEI) and tx["maxPriorityFeePerGas"] == hex(GWEI)
    assert tx["chainId"] == "0x539" and tx["yParity"] in ("0x0", "0x1") and tx["v"] == tx["yParity"]
    assert tx["accessList"] == [] and tx["blockHash"] == block["hash"] and tx["input"] == "0x"
    assert all(is_q(tx[k]) for k in ("gas", "gasPrice", "r", "s", "blockNumber", "transactionIndex"))
    assert auto.rpc("eth_getBlockByHash", block["hash"], False)["transactions"] == [h]
    assert auto.rpc("eth_getBlockReceipts", receipt["blockNumber"]) == [receipt]
    assert auto.rpc("eth_getBlockReceipts", {"blockHash": block["hash"]}) == [receipt]
    assert auto.rpc("eth_getBlockByNumber", "latest", False)["number"] == receipt["blockNumber"]
    for k in ("number", "hash", "parentHash", "timestamp", "gasLimit", "gasUsed", "baseFeePerGas", "miner",
              "transactions", "logsBloom", "stateRoot", "transactionsRoot", "receiptsRoot", "size"):
        assert k in block
    assert auto.rpc("eth_getTransactionCount", addr(1), "latest") == hex(n + 1)


def test_legacy_and_access_list_txs_in_full_blocks(auto):
    """Pitfall 6: eth-tester cannot return full blocks holding typed txs; ours expands each one."""
    n = nonce(auto, 2)
    h_legacy = auto.rpc("eth_sendRawTransaction", sign(2, nonce=n, gasPrice=2 * GWEI))
    al = [{"address": "0x" + "33" * 20, "storageKeys": ["0x" + "00" * 31 + "01"]}]
    h_al = auto.rpc("eth_sendRawTransaction", sign(2, nonce=n + 1, gasPrice=2 * GWEI, accessList=al, gas=30000))
    legacy = auto.rpc("eth_getTransactionByHash", h_legacy)
    assert legacy["type"] == "0x0" and legacy["chainId"] == "0x539" and int(legacy["v"], 16) in (2709, 2710)
    assert "yParity" not in legacy and legacy["gasPrice"] == hex(2 * GWEI)
    typed = auto.rpc("eth_getTransactionByHash", h_al)
    assert typed["type"] == "0x1" and typed["accessList"] == al
    full = auto.rpc("eth_getBlockByNumber", typed["blockNumber"], True)
    assert full["transactions"][0]["hash"] == h_al
    assert auto.rpc("eth_getTransactionReceipt", h_al)["type"] == "0x1"


def test_deploy_logs_and_get_logs(auto):
    n = nonce(auto, 3)
    h = auto.rpc("eth_sendRawTransaction", sign(3, nonce=n, to=None, value=0, gas=200000,
                                                 data=initcode(LOGGER_RUNTIME)))
    receipt = auto.rpc("eth_getTransactionReceipt", h)
    contract = receipt["contractAddress"]
    assert receipt["to"] is None and receipt["status"] == "0x1"
    from eth_utils import keccak
    import rlp
    assert contract == "0x" + keccak(rlp.encode([bytes.fromhex(addr(3)[2:]), n]))[12:].hex()
    assert auto.rpc("eth_getCode", contract) == "0x" + LOGGER_RUNTIME
    first = int(receipt["blockNumber"], 16)
    t1, t2 = "0x" + "00" * 31 + "01", "0x" + "00" * 31 + "02"
    h1 = auto.rpc("eth_sendRawTransaction", sign(3, nonce=n + 1, to=contract, value=0, gas=60000, data=t1))
    auto.rpc("eth_sendRawTransaction", sign(3, nonce=n + 2, to=contract, value=0, gas=60000, data=t2))
    r1 = auto.rpc("eth_getTransactionReceipt", h1)
    log = r1["logs"][0]
    assert log["address"] == contract and log["topics"] == [TOPIC0, t1] and log["data"] == "0x"
    assert log["transactionHash"] == h1 and log["blockHash"] == r1["blockHash"] and log["removed"] is False
    assert log["logIndex"] == "0x0" and log["blockNumber"] == r1["blockNumber"]
    rng = {"fromBlock": hex(first), "toBlock": "latest"}
    assert len(auto.rpc("eth_getLogs", {**rng, "address": contract})) == 2
    assert auto.rpc("eth_getLogs", {**rng, "address": [contract], "topics": [TOPIC0, t1]}) == [log]
    assert len(auto.rpc("eth_getLogs", {**rng, "topics": [None, [t1, t2]]})) == 2
    assert auto.rpc("eth_getLogs", {**rng, "topics": ["0x" + "bb" * 32]}) == []
    assert auto.rpc("eth_getLogs", {**rng, "address": "0x" + "44" * 20}) == []
    assert auto.rpc("eth_getLogs", {"blockHash": r1["blockHash"]}) == [log]


def test_call_and_estimate(auto):
    assert int(auto.rpc("eth_call", {"data": CHAINID_CODE}, "latest"), 16) == CHAIN_ID  # CHAINID opcode
    err = auto.error("eth_call", {"from": addr(0), "data": REVERT_CODE})
    assert err["code"] == 3 and err["message"] == "execution reverted: nope"
    assert err["data"].startswith("0x08c379a0")
    err = auto.error("eth_estimateGas", {"data": REVERT_CODE})
    assert err["code"] == 3 and err["message"] == "execution reverted: nope"
    assert auto.rpc("eth_estimateGas", {"from": addr(0), "to": addr(1), "value": "0x1"}) == hex(21000)
    gas = int(auto.rpc("eth_estimateGas", {"from": addr(0), "data": initcode(LOGGER_RUNTIME)}), 16)
    assert 53000 < gas < 200000
    assert auto.rpc("eth_call", {"to": addr(1), "data": "0x"}, "earliest") == "0x"
    assert auto.error("eth_call", {"from": "0x" + "01" * 20, "to": addr(1), "value": "0x1"})["message"] == \
        "insufficient funds for gas * price + value"


def test_storage_and_tx_count_by_block(auto):
    assert auto.rpc("eth_getStorageAt", addr(0), "0x0", "latest") == "0x" + "00" * 32
    assert auto.rpc("eth_getBlockTransactionCountByNumber", "0x0") == "0x0"


def test_fee_history_shape(auto):
    head = int(auto.rpc("eth_blockNumber"), 16)
    fh = auto.rpc("eth_feeHistory", "0x3", "latest", [10, 90])
    assert fh["oldestBlock"] == hex(head - 2)
    assert len(fh["baseFeePerGas"]) == 4 and len(fh["gasUsedRatio"]) == 3 and len(fh["reward"]) == 3
    latest = auto.rpc("eth_getBlockByNumber", "latest", False)
    assert fh["baseFeePerGas"][2] == latest["baseFeePerGas"]
    assert fh["baseFeePerGas"][3] == auto.rpc("eth_getBlockByNumber", "pending", False)["baseFeePerGas"]
    assert "reward" not in auto.rpc("eth_feeHistory", 2, "latest")
    assert auto.error("eth_feeHistory", "0x2", "latest", [50, 10])["code"] == -32602


# ---------------------------------------------------------------- refusals with geth's strings

def err_msg(node, raw):
    e = node.error("eth_sendRawTransaction", raw)
    assert e["code"] == -32000, e
    return e["message"]


def test_chain_id_must_match(auto):
    """Pitfall 1: eth-tester accepts any chain id; geth refuses with this string."""
    assert err_msg(auto, sign(4, nonce=nonce(auto, 4), chainId=1)) == "invalid chain id for signer"
    assert err_msg(auto, sign(4, nonce=nonce(auto, 4), gasPrice=2 * GWEI, chainId=5)) == "invalid chain id for signer"


def test_pre_eip155_refused(auto):
    """Pitfall 1: eth-tester accepts unprotected legacy txs; geth's RPC refuses them."""
    assert err_msg(auto, sign(4, nonce=nonce(auto, 4), gasPrice=2 * GWEI, chainId=None)) == \
        "only replay-protected (EIP-155) transactions allowed over RPC"


def test_txpool_error_strings(auto):
    n = nonce(auto, 5)
    auto.rpc("eth_sendRawTransaction", sign(5, nonce=n))
    assert err_msg(auto, sign(5, nonce=n)) == "nonce too low"
    assert err_msg(auto, sign(5, nonce=n + 1, value=10**40)) == "insufficient funds for gas * price + value"
    assert err_msg(auto, sign(5, nonce=n + 1, gas=20000)) == "intrinsic gas too low"
    assert err_msg(auto, sign(5, nonce=n + 1, maxFeePerGas=1, maxPriorityFeePerGas=1)) == \
        "max fee per gas less than block base fee"
    assert err_msg(auto, sign(5, nonce=n + 1, maxPriorityFeePerGas=0)) == "transaction underpriced"
    assert err_msg(auto, sign(5, nonce=n + 1, gasPrice=0)) == "transaction underpriced"
    assert err_msg(auto, sign(5, nonce=n + 1, maxPriorityFeePerGas=20 * GWEI)) == \
        "max priority fee per gas higher than max fee per gas"
    assert err_msg(auto, sign(5, nonce=n + 1, gas=10**9)) == "exceeds block gas limit"
    # flip a byte inside s: the signature no longer recovers to a valid key (or to this sender)
    raw = bytearray(bytes.fromhex(sign(5, nonce=n + 1)[2:]))
    raw[-1] ^= 0xff
    bad = err_msg(auto, "0x" + raw.hex())
    assert bad in ("invalid sender", "insufficient funds for gas * price + value")
    assert err_msg(auto, "0x02c0") != ""  # garbage typed payload: -32000 decode error
    assert auto.error("eth_sendRawTransaction", "0x")["code"] == -32000


def test_unknown_method_and_http_subscribe(auto):
    assert auto.error("eth_sendTransaction", {}) == \
        {"code": -32601, "message": "the method eth_sendTransaction does not exist/is not available"}
    assert auto.error("eth_subscribe", "newHeads") == {"code": -32601, "message": "notifications not supported"}
