#!/usr/bin/env python3
"""send_many: many concurrent eth_sendTransaction calls through the gateway, over many web3 8 connections.

  send_many.py --url ws://127.0.0.1:PORT/ --from 0xA1,0xA2,... [--connections 20] [--total 2000]
               [--to 0xX] [--value 1] [--timeout 120] [--allow-errors N] [--watch-receipts]
               [--in-flight 16] [--request-timeout 60]
  send_many.py --url ws://NODE/ --self-test-raw 0xKEY1,0xKEY2 [same options, no --watch-receipts]

Opens `--connections` AsyncWeb3(WebSocketProvider(url)) and spreads `--total` eth_sendTransaction
calls ({from, to, value} only: the gateway fills chainId, gas, fees and nonce) over them; call i
goes to connection i % C with from = A[(i // C) % len(A)], so every connection sends from several
addresses at once, each connection keeping up to `--in-flight` calls outstanding. Errors are
counted by (code, message); more than `--allow-errors` fails. Then it polls eth_getTransactionReceipt
in batches until every returned hash has a receipt (status 0x1, bounded by --timeout), reads each
transaction and checks, per from address, that the nonces form one contiguous range with no gap and
no duplicate (and that `from` is the address asked for).

`--watch-receipts`: before sending, each connection subscribes to `transactionReceipts` WITHOUT
params (the gateway then streams, as arrays, the receipts of the transactions THIS connection sent);
at the end every connection must have received exactly the receipts of its own hashes: none missing,
none twice, none of another connection's.

`--self-test-raw KEYS`: for a node without eth_sendTransaction (Tools/devnode): the same run, but
each call is a locally signed EIP-1559 tx sent with eth_sendRawTransaction (nonces allocated per
address in call order, so they reach the node out of order across connections). Proves the
receipt / nonce checking.

RESULT: {"sent", "errors": [{"code","message","count"}], "mined", "per_address": {addr: {"count",
"first_nonce", "last_nonce", "contiguous"}}, "receipts_streamed": {"per_connection_ok", "total"}
(with --watch-receipts), "seconds", "send_seconds", "tx_per_second"}.
"""

import argparse
import asyncio
import json
import os
import sys
from collections import Counter, defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import check, fail, normalize_key, run_main  # noqa: E402

import websockets  # noqa: E402
from eth_account import Account  # noqa: E402
from eth_utils import to_checksum_address  # noqa: E402
from web3 import AsyncWeb3, WebSocketProvider  # noqa: E402
from web3.exceptions import Web3RPCError  # noqa: E402
from web3.types import RPCEndpoint  # noqa: E402

BURN = "0x000000000000000000000000000000000000dEaD"
BATCH = 200  # calls per JSON-RPC batch while polling receipts / transactions


def hexstr(v):
    """HexBytes / bytes / str -> lowercase 0x-hex string."""
    if isinstance(v, str):
        return v.lower() if v.startswith("0x") else "0x" + v.lower()
    return "0x" + bytes(v).hex()


def as_int(v):
    return int(v, 16) if isinstance(v, str) else int(v)


class Conn:
    """One web3 8 WebSocket connection and what was sent / streamed through it."""

    def __init__(self, index, w3):
        self.index = index
        self.w3 = w3
        self.hashes = []          # hashes eth_send(Raw)Transaction returned on this connection
        self.sub_id = None
        self.streamed = Counter()  # tx hash -> times a receipt for it came on this connection
        self.stream_errors = []   # malformed notifications
        self.reader = None

    async def read_receipts(self):
        """Drains the subscription stream (it must be drained: web3 8's listener stops reading the
        socket, responses included, while its subscription queue is full)."""
        async for msg in self.w3.socket.process_subscriptions():
            if msg.get("subscription") != self.sub_id:
                self.stream_errors.append({"unexpected subscription": str(msg)[:300]})
                continue
            result = msg.get("result")
            if not isinstance(result, list):
                self.stream_errors.append({"result is not an array": str(result)[:300]})
                continue
            for r in result:
                try:
                    self.streamed[hexstr(r["transactionHash"])] += 1
                    if as_int(r["status"]) != 1:
                        self.stream_errors.append({"streamed receipt status != 1": hexstr(r["transactionHash"])})
                except (KeyError, TypeError, ValueError):
                    self.stream_errors.append({"malformed receipt": str(r)[:300]})


async def open_conn(i, url, args):
    provider = WebSocketProvider(url, request_timeout=args.request_timeout, max_connection_retries=1,
                                 subscription_response_queue_size=100000)
    w3 = await asyncio.wait_for(AsyncWeb3(provider), args.request_timeout)
    # web3's default middleware would turn {from,to,value} into a filled tx on the client
    # (gas_estimate adds `gas` via eth_estimateGas, gas_price_strategy reads the latest block per
    # call). The gateway must fill the rest, so send the bare object.
    # Calls go through w3.manager.socket_request (what w3.eth.* methods use underneath): it records
    # the request so an error answer raises Web3RPCError in the caller. NOT provider.make_request /
    # manager.coro_request: their error answers count as "stray" errors in web3 8's listener task,
    # which then dies and re-raises that first error for every later call on the connection.
    w3.middleware_onion.clear()
    return Conn(i, w3)


class RawBatcher:
    """Plain `websockets` connection for polling in JSON-RPC batches."""

    def __init__(self, ws, timeout):
        self.ws, self.timeout, self.next_id = ws, timeout, 1

    async def batch(self, method, params_list):
        out = []
        for start in range(0, len(params_list), BATCH):
            chunk = params_list[start:start + BATCH]
            ids = list(range(self.next_id, self.next_id + len(chunk)))
            self.next_id += len(chunk)
            await self.ws.send(json.dumps([{"jsonrpc": "2.0", "id": i, "method": method, "params": p}
                                           for i, p in zip(ids, chunk)]))
            while True:
                raw = await asyncio.wait_for(self.ws.recv(), self.timeout)
                msg = json.loads(raw)
                if isinstance(msg, list):
                    break
                # a single object: a notification (none expected) or an error for the whole batch
                if isinstance(msg, dict) and msg.get("method") == "eth_subscription":
                    continue
                fail(f"{method} batch answered with a single object", "an array of responses", msg)
            by_id = {m.get("id"): m for m in msg}
            for i in ids:
                m = by_id.get(i)
                check(m is not None, f"{method} batch: response for id {i}", "present", sorted(by_id)[:5])
                if "error" in m:
                    fail(f"{method} returned an error", "a result", m["error"])
                out.append(m["result"])
        return out


async def scenario(args):
    if args.self_test_raw:
        keys = [normalize_key(k) for k in args.self_test_raw.split(",") if k.strip()]
        accounts = {Account.from_key(k).address: Account.from_key(k) for k in keys}
        froms = list(accounts)
    else:
        check(args.from_, "--from (or --self-test-raw) is required", "addresses", None)
        froms = [to_checksum_address(a.strip()) for a in args.from_.split(",") if a.strip()]
        accounts = None
    check(froms, "at least one from address", ">= 1", froms)
    check(not (args.watch_receipts and args.self_test_raw), "--watch-receipts needs the gateway",
          "no --self-test-raw", "both")
    to = to_checksum_address(args.to) if args.to else BURN

    conns = await asyncio.wait_for(
        asyncio.gather(*(open_conn(i, args.url, args) for i in range(args.connections))), args.timeout)
    try:
        return await _run(args, conns, froms, accounts, to)
    finally:
        for c in conns:
            if c.reader:
                c.reader.cancel()
        await asyncio.gather(*(c.w3.provider.disconnect() for c in conns), return_exceptions=True)


async def _run(args, conns, froms, accounts, to):
    loop = asyncio.get_running_loop()
    if args.watch_receipts:
        for c in conns:
            # `w3.eth.subscribe` accepts any type string: an unknown one becomes a generic
            # EthSubscription(("transactionReceipts",)) registered with the subscription manager,
            # so process_subscriptions() yields its notifications (result passed through as-is).
            c.sub_id = await c.w3.eth.subscribe("transactionReceipts")
            check(isinstance(c.sub_id, str) and c.sub_id.startswith("0x"), "transactionReceipts subscription id",
                  "0x-hex string", c.sub_id)
            c.reader = asyncio.create_task(c.read_receipts())
        ids = [c.sub_id for c in conns]
        check(len(set(ids)) == len(ids), "subscription ids are distinct", len(ids), len(set(ids)))

    # -- raw self-test: fees and nonces from the node --
    nonces = {}
    fee = None
    chain_id = None
    if accounts is not None:
        w3 = conns[0].w3
        chain_id = await w3.eth.chain_id
        base = (await w3.eth.get_block("latest")).get("baseFeePerGas", 0)
        fee = (10**9, 4 * base + 10**9)
        for a in froms:
            nonces[a] = await w3.eth.get_transaction_count(a, "pending")

    errors = Counter()
    error_samples = []
    sent_from = {}  # hash -> from asked for

    async def send_one(c, i, sem):
        frm = froms[(i // args.connections) % len(froms)]
        async with sem:
            try:
                if accounts is None:
                    tx = {"from": frm, "to": to, "value": hex(args.value)}
                    txhash = await c.w3.manager.socket_request(RPCEndpoint("eth_sendTransaction"), [tx])
                else:
                    nonce = nonces[frm]
                    nonces[frm] += 1  # allocated before the await: call order, no races in asyncio
                    signed = accounts[frm].sign_transaction({
                        "type": 2, "chainId": chain_id, "nonce": nonce, "to": to, "value": args.value,
                        "gas": 21000, "maxPriorityFeePerGas": fee[0], "maxFeePerGas": fee[1]})
                    raw = "0x" + bytes(signed.raw_transaction).hex()
                    txhash = await c.w3.manager.socket_request(RPCEndpoint("eth_sendRawTransaction"), [raw])
                    check(hexstr(txhash) == hexstr(signed.hash), "eth_sendRawTransaction hash",
                          hexstr(signed.hash), hexstr(txhash))
            except Web3RPCError as e:
                err = (e.rpc_response or {}).get("error", {}) if isinstance(e.rpc_response, dict) else {}
                errors[(err.get("code"), err.get("message", str(e)))] += 1
                if len(error_samples) < 5:
                    error_samples.append({"call": i, "from": frm, "error": err or str(e)})
                return
            except (asyncio.TimeoutError, TimeoutError) as e:
                errors[(None, f"client timeout after {args.request_timeout}s: {type(e).__name__}")] += 1
                return
            h = hexstr(txhash)
            check(len(h) == 66, "eth_sendTransaction result is a 32-byte hash", "0x + 64 hex", txhash)
            check(h not in sent_from, "every call returns a new hash", "unique", h)
            sent_from[h] = frm
            c.hashes.append(h)

    async def drive(c):
        sem = asyncio.Semaphore(args.in_flight)
        await asyncio.gather(*(send_one(c, i, sem) for i in range(c.index, args.total, args.connections)))

    t0 = loop.time()
    await asyncio.wait_for(asyncio.gather(*(drive(c) for c in conns)), args.timeout)
    send_seconds = loop.time() - t0
    n_err = sum(errors.values())
    error_list = [{"code": k[0], "message": k[1], "count": v} for k, v in errors.most_common()]
    if n_err > args.allow_errors:
        fail(f"{n_err} eth_sendTransaction calls failed (allowed {args.allow_errors}); samples: "
             f"{json.dumps(error_samples)}", f"<= {args.allow_errors} errors", error_list)
    hashes = list(sent_from)

    # -- wait for every receipt, in batches over a plain websocket --
    deadline = t0 + args.timeout
    async with websockets.connect(args.url, max_size=None, open_timeout=args.request_timeout) as ws:
        rpc = RawBatcher(ws, args.request_timeout)
        pending = list(hashes)
        receipts = {}
        while pending:
            if loop.time() > deadline:
                # diagnose: which nonces are stuck (a nonce gap keeps every later tx of that sender queued)
                stuck = await rpc.batch("eth_getTransactionByHash", [[h] for h in pending[:BATCH]])
                mined_txs = await rpc.batch("eth_getTransactionByHash", [[h] for h in list(receipts)[:5000]])
                last = defaultdict(lambda: -1)
                for t in mined_txs:
                    if t:
                        a = to_checksum_address(t["from"])
                        last[a] = max(last[a], as_int(t["nonce"]))
                detail = defaultdict(list)
                for h, t in zip(pending, stuck):
                    detail[sent_from[h]].append(as_int(t["nonce"]) if t else f"{h[:10]}.. unknown to the node")
                hint = {a: {"last_mined_nonce": last.get(a), "stuck_nonces": sorted(v, key=lambda x: (isinstance(x, str), str(x).zfill(20)))[:10]}
                        for a, v in detail.items()}
                fail(f"{len(pending)} of {len(hashes)} transactions have no receipt after {args.timeout}s "
                     f"(stuck nonces above the last mined one mean a nonce gap)", "all mined", hint)
            got = await rpc.batch("eth_getTransactionReceipt", [[h] for h in pending])
            still = []
            for h, r in zip(pending, got):
                if r is None:
                    still.append(h)
                else:
                    receipts[h] = r
            pending = still
            if pending:
                await asyncio.sleep(0.2)
        mined_seconds = loop.time() - t0
        bad = [h for h, r in receipts.items() if as_int(r["status"]) != 1]
        check(not bad, "receipt status 0x1 for every transaction", "0x1", bad[:5])

        # -- nonces per from address --
        txs = await rpc.batch("eth_getTransactionByHash", [[h] for h in hashes])
    per_addr = defaultdict(list)
    for h, tx in zip(hashes, txs):
        check(tx is not None, f"eth_getTransactionByHash({h})", "a transaction", None)
        frm = to_checksum_address(tx["from"])
        check(frm == sent_from[h], f"sender of {h}", sent_from[h], frm)
        check(hexstr(tx["hash"]) == h, "eth_getTransactionByHash hash", h, tx["hash"])
        per_addr[frm].append(as_int(tx["nonce"]))
    per_address = {}
    for a in froms:
        ns = sorted(per_addr.get(a, []))
        if not ns:
            continue
        dup = [n for n, k in Counter(ns).items() if k > 1]
        check(not dup, f"no duplicate nonce for {a}", "distinct nonces", dup[:10])
        contiguous = ns == list(range(ns[0], ns[0] + len(ns)))
        if not contiguous:
            missing = sorted(set(range(ns[0], ns[-1] + 1)) - set(ns))
            fail(f"nonces of {a} have gaps", f"{ns[0]}..{ns[0] + len(ns) - 1} contiguous",
                 f"missing {missing[:10]} (of {len(missing)})")
        per_address[a] = {"count": len(ns), "first_nonce": ns[0], "last_nonce": ns[-1], "contiguous": contiguous}

    out = {"sent": len(hashes), "errors": error_list, "mined": len(receipts), "per_address": per_address,
           "connections": len(conns), "seconds": round(mined_seconds, 3), "send_seconds": round(send_seconds, 3),
           "tx_per_second": round(len(receipts) / mined_seconds, 1) if mined_seconds > 0 else None,
           "mode": "raw-self-test" if accounts is not None else "eth_sendTransaction"}

    # -- streamed receipts: exactly this connection's hashes --
    if args.watch_receipts:
        def complete():
            return all(set(c.streamed) >= set(c.hashes) for c in conns)
        while not complete() and loop.time() < deadline:
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # grace period: anything extra arriving now is also a failure
        owner = {h: c.index for c in conns for h in c.hashes}
        total = 0
        for c in conns:
            check(not c.stream_errors, f"connection {c.index}: well-formed receipt notifications", "none bad",
                  c.stream_errors[:5])
            mine = set(c.hashes)
            got = set(c.streamed)
            missing = mine - got
            foreign = got - mine
            twice = [h for h, k in c.streamed.items() if k > 1]
            check(not missing, f"connection {c.index}: a receipt streamed for each of its {len(mine)} hashes",
                  "none missing", f"{len(missing)} missing, e.g. {sorted(missing)[:3]}")
            check(not foreign, f"connection {c.index}: no receipts of transactions it did not send", "none",
                  [(h, owner.get(h, "not sent by this run")) for h in sorted(foreign)[:5]])
            check(not twice, f"connection {c.index}: each receipt streamed once", "once", twice[:5])
            total += sum(c.streamed.values())
        out["receipts_streamed"] = {"per_connection_ok": True, "total": total}
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True, help="ws://127.0.0.1:PORT/ of the gateway (node with --self-test-raw)")
    p.add_argument("--connections", type=int, default=20)
    p.add_argument("--total", type=int, default=2000)
    p.add_argument("--from", dest="from_", metavar="A1,A2,...", help="comma-separated sender addresses held by the gateway")
    p.add_argument("--to", help=f"recipient (default {BURN})")
    p.add_argument("--value", type=int, default=1, help="wei per transaction (default 1)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds for the whole send + mine (default 120)")
    p.add_argument("--request-timeout", type=float, default=60.0, help="seconds per single call (default 60)")
    p.add_argument("--in-flight", type=int, default=16, help="outstanding calls per connection (default 16)")
    p.add_argument("--allow-errors", type=int, default=0)
    p.add_argument("--watch-receipts", action="store_true")
    p.add_argument("--self-test-raw", metavar="KEYS", help="comma-separated funded keys: sign locally, eth_sendRawTransaction")
    args = p.parse_args(argv)
    if args.connections < 1 or args.total < 1 or args.in_flight < 1:
        p.error("--connections, --total and --in-flight must be >= 1")
    return run_main(lambda: scenario(args))


if __name__ == "__main__":
    sys.exit(main())
