#!/usr/bin/env python3
"""fanout: many raw WebSocket clients share newHeads.

  fanout.py --url ws://127.0.0.1:PORT/ [--connections 50] [--heads 3] [--private-key 0xKEY] [--timeout 30]

Opens N connections with the `websockets` library; each sends eth_subscribe ["newHeads"]. Checks
every id is `0x` + 32 lowercase hex and all ids are distinct, that no notification arrives before
its eth_subscribe response, then waits until every connection has >= --heads heads and checks all
connections saw the same block hashes over their common block-number range (consecutive numbers,
no gaps or duplicates). With --private-key, one extra connection sends 1-wei transfers (one per
second of silence) so an automining node makes blocks. Prints `RESULT {json}` on success.
"""

import asyncio
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import SUB_ID_RE, RawRpc, TransferPump, base_parser, check, fail, run_main  # noqa: E402

import websockets  # noqa: E402


class Client:
    def __init__(self, index):
        self.index = index
        self.ws = None
        self.sub_id = None
        self.heads = []  # (number, hash)
        self.early = []  # notifications that came before the subscribe response

    async def open_and_subscribe(self, url, timeout):
        self.ws = await asyncio.wait_for(websockets.connect(url, max_size=None, open_timeout=timeout), timeout)
        await self.ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newHeads"]}))
        while True:
            msg = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if msg.get("method") == "eth_subscription":
                self.early.append(msg)
                continue
            check(msg.get("id") == 1, f"conn {self.index}: eth_subscribe response id", 1, msg)
            if "error" in msg:
                fail(f"conn {self.index}: eth_subscribe failed", "a subscription id", msg["error"])
            self.sub_id = msg["result"]
            return

    async def collect(self, on_head, timeout):
        """Reads heads forever (the caller cancels it); calls on_head() after each one."""
        while True:
            try:
                raw = await asyncio.wait_for(self.ws.recv(), timeout)
            except asyncio.TimeoutError:
                fail(f"conn {self.index}: no message for {timeout}s", "newHeads notifications",
                     f"{len(self.heads)} heads so far")
            msg = json.loads(raw)
            check(msg.get("method") == "eth_subscription", f"conn {self.index}: unexpected message",
                  "eth_subscription notification", msg)
            params = msg["params"]
            check(params["subscription"] == self.sub_id, f"conn {self.index}: notification subscription id",
                  self.sub_id, params["subscription"])
            head = params["result"]
            self.heads.append((int(head["number"], 16), head["hash"]))
            on_head()


def common_range(clients):
    """(lo, hi) block numbers every connection has seen; hi < lo when there is no overlap."""
    if any(not c.heads for c in clients):
        return (1, 0)
    return (max(c.heads[0][0] for c in clients), min(c.heads[-1][0] for c in clients))


async def scenario(args):
    n = args.connections
    clients = [Client(i) for i in range(n)]
    try:
        # Open and subscribe in waves so a 2-core box isn't flooded by handshakes at once.
        wave = 25
        for start in range(0, n, wave):
            await asyncio.gather(*(c.open_and_subscribe(args.url, args.timeout) for c in clients[start:start + wave]))
        ids = [c.sub_id for c in clients]
        for c in clients:
            check(isinstance(c.sub_id, str) and SUB_ID_RE.match(c.sub_id) is not None,
                  f"conn {c.index}: subscription id format", "0x + 32 lowercase hex", c.sub_id)
            check(not c.early, f"conn {c.index}: notification before the eth_subscribe response", "none", c.early[:1])
        check(len(set(ids)) == n, "distinct subscription ids", n, len(set(ids)))

        pump_task = None
        pump = None
        if args.private_key:
            pump_ws = await asyncio.wait_for(websockets.connect(args.url, open_timeout=args.timeout), args.timeout)
            pump = TransferPump(RawRpc(pump_ws, args.timeout), args.private_key)
            pump_task = asyncio.create_task(_pump(pump, clients, args.heads))

        # Done when every connection has >= --heads heads AND the block range all of them saw
        # spans >= --heads blocks (connections subscribed a little apart in time).
        done = asyncio.Event()

        def on_head():
            lo, hi = common_range(clients)
            if min(len(c.heads) for c in clients) >= args.heads and hi - lo + 1 >= args.heads:
                done.set()

        collectors = [asyncio.create_task(c.collect(on_head, args.timeout)) for c in clients]
        waiter = asyncio.create_task(done.wait())
        try:
            finished, _ = await asyncio.wait([waiter, *collectors], timeout=args.timeout * 2,
                                             return_when=asyncio.FIRST_COMPLETED)
            for t in finished:
                if t is not waiter:
                    t.result()  # a collector failed: raise its ScenarioFailure
            if waiter not in finished:
                counts = sorted(len(c.heads) for c in clients)
                fail("not every connection got enough heads in time", f">= {args.heads} each over a common range",
                     f"counts {counts}, common range {common_range(clients)}")
        finally:
            for t in [waiter, *collectors]:
                t.cancel()
            await asyncio.gather(waiter, *collectors, return_exceptions=True)
            if pump_task:
                pump_task.cancel()
                await asyncio.gather(pump_task, return_exceptions=True)
                await pump.rpc.ws.close()

        # Each connection's own sequence: consecutive numbers (one head per block, in order).
        for c in clients:
            nums = [num for num, _ in c.heads]
            check(all(b == a + 1 for a, b in zip(nums, nums[1:])), f"conn {c.index}: consecutive head numbers",
                  "n, n+1, n+2, ...", nums)
        # Common range across connections: every connection must report the same hash per number.
        lo, hi = common_range(clients)
        check(hi >= lo, "connections share a common block range", f"overlap of {[c.heads[0][0] for c in clients]}"
              f" .. {[c.heads[-1][0] for c in clients]}", (lo, hi))
        reference = {num: hsh for num, hsh in clients[0].heads}
        for c in clients[1:]:
            for num, hsh in c.heads:
                if lo <= num <= hi:
                    check(hsh == reference[num], f"conn {c.index}: hash of block {num}", reference[num], hsh)
        return {
            "connections": n,
            "heads_per_connection": min(len(c.heads) for c in clients),
            "heads_max": max(len(c.heads) for c in clients),
            "distinct_ids": len(set(ids)),
            "common_range": [lo, hi],
            "pump_txs": pump.sent if pump else 0,
        }
    finally:
        await asyncio.gather(*(c.ws.close() for c in clients if c.ws is not None), return_exceptions=True)


async def _pump(pump, clients, want):
    """Send a transfer whenever no new head arrived for a second; runs until cancelled."""
    last_total = -1
    while True:
        total = sum(len(c.heads) for c in clients)
        if total == last_total:
            await pump.send_one()
        last_total = total
        await asyncio.sleep(1.0)


def main():
    p = base_parser(__doc__.splitlines()[1])
    p.add_argument("--connections", type=int, default=50)
    p.add_argument("--heads", type=int, default=3, help="heads each connection must receive")
    p.add_argument("--private-key", default=None, help="funded key; sends transfers to make blocks")
    args = p.parse_args()
    check_args = args.connections >= 1 and args.heads >= 1
    if not check_args:
        p.error("--connections and --heads must be >= 1")
    return run_main(lambda: scenario(args))


if __name__ == "__main__":
    sys.exit(main())
