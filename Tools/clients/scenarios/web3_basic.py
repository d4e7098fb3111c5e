#!/usr/bin/env python3
"""web3_basic: drive the gateway with the real third-party client, web3.py 8.

  web3_basic.py --url ws://127.0.0.1:PORT/ --private-key 0xKEY [--chain-id N] [--timeout 30]

Uses AsyncWeb3(WebSocketProvider(url)) (binary frames, ids from 0, as web3 8 sends them):
chain id, balance, latest block, block number; an EIP-1559 transfer signed with eth-account and
sent with eth_sendRawTransaction (receipt status 1); a newHeads subscription (>= 2 heads; sends
transfers if the node only mines on demand); a hand-assembled contract whose call emits LOG1, a
`logs` subscription filtered by address + topic that must deliver the matching log and nothing
from another address or another topic; a JSON-RPC batch via `w3.batch_requests()`.
Prints `RESULT {json}` and exits 0, or says what differed on stderr and exits 1.
"""

import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import SUB_ID_RE, base_parser, check, fail, normalize_key, run_main  # noqa: E402

from eth_account import Account  # noqa: E402
from web3 import AsyncWeb3, WebSocketProvider  # noqa: E402
from web3.utils.subscriptions import LogsSubscription  # noqa: E402

# ---- the contract, hand-assembled ----
# Runtime (16 bytes): emit LOG1 whose topic0 is calldata[0:32] and whose data is calldata[32:64].
#   60 20   PUSH1 0x20      size   = 32
#   60 20   PUSH1 0x20      offset = 32 (in calldata)
#   60 00   PUSH1 0x00      dest   = 0  (in memory)
#   37      CALLDATACOPY    mem[0:32] = calldata[32:64]
#   60 00   PUSH1 0x00
#   35      CALLDATALOAD    stack: topic0 = calldata[0:32]
#   60 20   PUSH1 0x20      size   = 32
#   60 00   PUSH1 0x00      offset = 0
#   a1      LOG1            log(mem[0:32], topic0)
#   00      STOP
# Passing the topic in calldata lets one contract emit both the wanted and an unwanted topic, and
# a second deployment of the same code gives a log from a different address.
RUNTIME = bytes.fromhex("6020" "6020" "6000" "37" "6000" "35" "6020" "6000" "a1" "00")
# Init code (11 bytes) copies the runtime that follows it into memory and returns it:
#   60 10   PUSH1 0x10      len(runtime)
#   80      DUP1
#   60 0b   PUSH1 0x0b      offset of runtime in this code (= len(init))
#   60 00   PUSH1 0x00      memory dest
#   39      CODECOPY        mem[0:16] = code[11:27]
#   60 00   PUSH1 0x00
#   f3      RETURN          return mem[0:16]
INIT = bytes.fromhex("6010" "80" "600b" "6000" "39" "6000" "f3")
assert len(RUNTIME) == 0x10 and len(INIT) == 0x0B
DEPLOY_CODE = INIT + RUNTIME

TOPIC_WANTED = bytes.fromhex("5157" * 16)      # 0x5157...: the topic the logs filter asks for
TOPIC_OTHER = bytes.fromhex("0bad" * 16)       # a topic the filter must not deliver
BURN = "0x000000000000000000000000000000000000dEaD"


def h(b):
    """bytes / HexBytes / str -> lowercase 0x-hex string."""
    if isinstance(b, str):
        return b.lower() if b.startswith("0x") else "0x" + b.lower()
    return "0x" + bytes(b).hex()


class Sender:
    """Signs EIP-1559 transactions with eth-account and sends them with eth_sendRawTransaction."""

    def __init__(self, w3, account, chain_id, timeout):
        self.w3, self.account, self.chain_id, self.timeout = w3, account, chain_id, timeout
        self.nonce = None

    async def send(self, to=None, value=0, data=b"", gas=21000):
        if self.nonce is None:
            self.nonce = await self.w3.eth.get_transaction_count(self.account.address, "pending")
        latest = await self.w3.eth.get_block("latest")
        base = latest.get("baseFeePerGas", 0)
        tip = 10**9
        tx = {"type": 2, "chainId": self.chain_id, "nonce": self.nonce, "value": value, "gas": gas,
              "maxPriorityFeePerGas": tip, "maxFeePerGas": 2 * base + tip, "data": data}
        if to is not None:
            tx["to"] = to
        signed = self.account.sign_transaction(tx)
        txhash = await self.w3.eth.send_raw_transaction(signed.raw_transaction)
        check(h(txhash) == h(signed.hash), "eth_sendRawTransaction returned another hash", h(signed.hash), h(txhash))
        self.nonce += 1
        return txhash

    async def receipt(self, txhash):
        r = await self.w3.eth.wait_for_transaction_receipt(txhash, timeout=self.timeout, poll_latency=0.1)
        check(r["status"] == 1, f"receipt status of {h(txhash)}", 1, r["status"])
        return r


class Inbox:
    """Reads web3's subscription stream and files notifications per subscription id."""

    def __init__(self, w3):
        self.stream = w3.socket.process_subscriptions()
        self.by_id = {}

    async def next_for(self, sub_id, timeout):
        box = self.by_id.setdefault(sub_id, [])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not box:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise asyncio.TimeoutError(f"no notification for {sub_id} within {timeout}s")
            msg = await asyncio.wait_for(self.stream.__anext__(), remaining)
            self.by_id.setdefault(msg["subscription"], []).append(msg["result"])
        return box.pop(0)


async def scenario(args):
    account = Account.from_key(normalize_key(args.private_key))
    provider = WebSocketProvider(args.url, request_timeout=args.timeout, max_connection_retries=1)
    w3 = await asyncio.wait_for(AsyncWeb3(provider), args.timeout)
    try:
        return await _run(args, w3, account)
    finally:
        await w3.provider.disconnect()


async def _run(args, w3, account):
    out = {"url": args.url, "address": account.address}
    check(await w3.is_connected(), "AsyncWeb3 is_connected()", True, False)

    # -- basic reads --
    chain_id = await w3.eth.chain_id
    if args.chain_id is not None:
        check(chain_id == args.chain_id, "eth.chain_id", args.chain_id, chain_id)
    out["chain_id"] = chain_id
    balance = await w3.eth.get_balance(account.address)
    check(balance > 0, f"eth.get_balance({account.address}) > 0", "> 0", balance)
    latest = await w3.eth.get_block("latest")
    check(isinstance(latest["number"], int) and len(latest["hash"]) == 32, "eth.get_block('latest') shape",
          "number int, 32-byte hash", latest)
    number = await w3.eth.block_number
    check(number >= latest["number"], "eth.block_number >= latest block number", f">= {latest['number']}", number)
    out["block_number_start"] = number

    # -- EIP-1559 transfer --
    sender = Sender(w3, account, chain_id, args.timeout)
    txhash = await sender.send(to=BURN, value=12345)
    receipt = await sender.receipt(txhash)
    tx = await w3.eth.get_transaction(txhash)
    check(tx["type"] == 2 and tx["value"] == 12345 and tx["to"].lower() == BURN.lower(),
          "eth.get_transaction of the transfer", "type 2, value 12345, to 0x..dEaD", dict(tx))
    out["tx_hash"] = h(txhash)
    out["tx_block"] = receipt["blockNumber"]

    inbox = Inbox(w3)

    # -- newHeads through w3.eth.subscribe --
    heads_id = await w3.eth.subscribe("newHeads")
    check(isinstance(heads_id, str) and SUB_ID_RE.match(heads_id), "newHeads subscription id format",
          "0x + 32 lowercase hex", heads_id)
    heads = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + args.timeout
    pumped = 0
    while len(heads) < 2:
        if loop.time() > deadline:
            fail("newHeads: fewer than 2 heads before the timeout", ">= 2", len(heads))
        try:
            head = await inbox.next_for(heads_id, 1.0)
        except asyncio.TimeoutError:
            await sender.send(to=BURN, value=1)  # the node may mine only on transactions
            pumped += 1
            continue
        check(isinstance(head.get("number"), int) and len(head.get("hash", b"")) == 32, "newHeads payload",
              "block header with number and hash", head)
        if heads:
            check(head["number"] > heads[-1]["number"], "newHeads numbers increase",
                  f"> {heads[-1]['number']}", head["number"])
        heads.append(head)
    out["heads_seen"] = [hd["number"] for hd in heads]
    out["head_hashes"] = [h(hd["hash"]) for hd in heads]
    out["heads_pump_txs"] = pumped
    check(await w3.eth.unsubscribe(heads_id) is True, "eth.unsubscribe(newHeads id)", True, False)

    # -- contract with LOG1, logs subscription --
    deploy_a = await sender.send(data=DEPLOY_CODE, gas=100000)
    deploy_b = await sender.send(data=DEPLOY_CODE, gas=100000)
    addr_a = (await sender.receipt(deploy_a))["contractAddress"]
    addr_b = (await sender.receipt(deploy_b))["contractAddress"]
    check(addr_a and addr_b and addr_a != addr_b, "two contract deployments", "two distinct addresses",
          (addr_a, addr_b))
    code = await w3.eth.get_code(addr_a)
    check(bytes(code) == RUNTIME, "eth.get_code of the deployed contract", h(RUNTIME), h(code))
    out["contract"] = addr_a
    out["other_contract"] = addr_b

    logs_sub = LogsSubscription(address=addr_a, topics=[h(TOPIC_WANTED)])
    logs_id = await w3.subscription_manager.subscribe(logs_sub)
    check(isinstance(logs_id, str) and SUB_ID_RE.match(logs_id), "logs subscription id format",
          "0x + 32 lowercase hex", logs_id)
    check(logs_id != heads_id, "logs subscription id differs from the newHeads id", "distinct", logs_id)

    marker_wrong_topic = (1).to_bytes(32, "big")
    marker_wrong_addr = (2).to_bytes(32, "big")
    marker_wanted = (3).to_bytes(32, "big")
    # Same sender, consecutive nonces: the two unwanted logs come before the wanted one, so when
    # the wanted log arrives anything the filter wrongly let through would already have come.
    t1 = await sender.send(to=addr_a, data=TOPIC_OTHER + marker_wrong_topic, gas=60000)
    t2 = await sender.send(to=addr_b, data=TOPIC_WANTED + marker_wrong_addr, gas=60000)
    t3 = await sender.send(to=addr_a, data=TOPIC_WANTED + marker_wanted, gas=60000)
    for t in (t1, t2, t3):
        r = await sender.receipt(t)
        check(len(r["logs"]) == 1, f"receipt of {h(t)} has one log", 1, len(r["logs"]))
    log = await inbox.next_for(logs_id, args.timeout)
    got = {"address": log["address"].lower(), "topics": [h(t) for t in log["topics"]], "data": h(log["data"])}
    want = {"address": addr_a.lower(), "topics": [h(TOPIC_WANTED)], "data": h(marker_wanted)}
    check(got == want, "the first log delivered on the logs subscription", want, got)
    check(h(log["transactionHash"]) == h(t3), "log transactionHash", h(t3), h(log["transactionHash"]))
    check(log.get("removed") is False, "log removed flag", False, log.get("removed"))
    # Grace period: nothing else may arrive on the logs subscription.
    try:
        extra = await inbox.next_for(logs_id, 1.5)
    except asyncio.TimeoutError:
        extra = None
    check(extra is None, "no other log on the filtered subscription", None, extra)
    out["log"] = {"address": got["address"], "topic": got["topics"][0], "block": log["blockNumber"],
                  "tx": h(log["transactionHash"])}
    check(await logs_sub.unsubscribe() is True, "LogsSubscription.unsubscribe()", True, False)

    # -- a JSON-RPC batch through w3.batch_requests() (a JSON array over the same WS) --
    async with w3.batch_requests() as batch:
        batch.add(w3.eth.get_block(receipt["blockNumber"]))
        batch.add(w3.eth.get_balance(BURN))
        batch.add(w3.eth.get_transaction_receipt(txhash))
        batch.add(w3.eth.get_code(addr_a))
        batch.add(w3.eth.chain_id)
        results = await batch.async_execute()
    check(len(results) == 5, "batch result count", 5, len(results))
    blk, bal, rcpt, code2, cid = results
    check(blk["number"] == receipt["blockNumber"] and h(blk["hash"]) == h(receipt["blockHash"]),
          "batch[0] eth_getBlockByNumber", h(receipt["blockHash"]), h(blk["hash"]))
    check(bal >= 12345, "batch[1] eth_getBalance(0x..dEaD)", ">= 12345", bal)
    check(h(rcpt["transactionHash"]) == h(txhash) and rcpt["status"] == 1, "batch[2] eth_getTransactionReceipt",
          h(txhash), h(rcpt["transactionHash"]))
    check(bytes(code2) == RUNTIME, "batch[3] eth_getCode", h(RUNTIME), h(code2))
    check(cid == chain_id, "batch[4] eth_chainId", chain_id, cid)
    out["batch_items"] = len(results)

    out["block_number_end"] = await w3.eth.block_number
    return out


def main():
    p = base_parser(__doc__.splitlines()[1])
    p.add_argument("--private-key", required=True, help="hex private key of a funded account")
    p.add_argument("--chain-id", type=int, default=None, help="expected chain id (checked when given)")
    args = p.parse_args()
    return run_main(lambda: scenario(args))


if __name__ == "__main__":
    sys.exit(main())
