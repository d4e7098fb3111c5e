#!/usr/bin/env python3
"""Load benchmark: raw signed EIP-1559 transfers per second through a devnode.

Starts `devnode.py --block-time-ms 100` on a free port, pre-signs N transfers from
several dev accounts (eth-account + coincurve), sends them as eth_sendRawTransaction
over a few WebSocket connections (each pipelined: all requests written, then the
answers read), waits until every sender's mined nonce has caught up, and prints
  raw transfers/s: X
  mined: M of N
Usage: .venv/bin/python bench.py [--txs 5000] [--senders 8] [--connections 4]
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time

import aiohttp
from eth_account import Account

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from evmnode.accounts import dev_private_key  # noqa: E402

CHAIN_ID = 1337


def start_node(block_time_ms, senders):
    proc = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "devnode.py"), "--port", "0", "--chain-id", str(CHAIN_ID),
         "--block-time-ms", str(block_time_ms), "--accounts", str(senders)],
        stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if "devnode listening on" not in line:
        proc.kill()
        raise SystemExit(f"devnode did not start: {line!r}")
    return proc, line.split("(")[1].rstrip(")\n")


def presign(total, senders):
    per = total // senders
    recipient = "0x" + "11" * 20
    jobs = []  # per sender: list of raw tx hex
    for s in range(senders):
        acct = Account.from_key(dev_private_key(s))
        raws = []
        for nonce in range(per):
            tx = {"type": 2, "chainId": CHAIN_ID, "nonce": nonce, "to": recipient, "value": 1, "gas": 21000,
                  "maxFeePerGas": 10 * 10**9, "maxPriorityFeePerGas": 10**9}
            raws.append("0x" + acct.sign_transaction(tx).raw_transaction.hex())
        jobs.append((acct.address, raws))
    return jobs


async def send_all(url, jobs, connections):
    groups = [jobs[i::connections] for i in range(connections)]
    errors = []

    async def one(session, group):
        async with session.ws_connect(url, max_msg_size=0) as ws:
            reqs = []
            # interleave senders; each sender's nonces stay in order on this connection
            for i in range(max(len(r) for _, r in group)):
                for _, raws in group:
                    if i < len(raws):
                        reqs.append(raws[i])
            for i, raw in enumerate(reqs):
                await ws.send_str(json.dumps({"jsonrpc": "2.0", "id": i, "method": "eth_sendRawTransaction",
                                              "params": [raw]}))
            for _ in reqs:
                msg = json.loads((await ws.receive()).data)
                if "error" in msg:
                    errors.append(msg["error"])

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(one(session, g) for g in groups if g))
    return errors


async def mined_count(url, jobs):
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url) as ws:
            total = 0
            for i, (address, _) in enumerate(jobs):
                await ws.send_str(json.dumps({"jsonrpc": "2.0", "id": i, "method": "eth_getTransactionCount",
                                              "params": [address, "latest"]}))
                total += int(json.loads((await ws.receive()).data)["result"], 16)
            return total


async def run(args):
    jobs = presign(args.txs, args.senders)
    total = sum(len(r) for _, r in jobs)
    if args.url:
        proc, url = None, args.url
    else:
        proc, url = start_node(100, args.senders)
    try:
        t0 = time.monotonic()
        errors = await send_all(url, jobs, args.connections)
        t_sent = time.monotonic()
        deadline = t0 + 120
        mined = 0
        while time.monotonic() < deadline:
            mined = await mined_count(url, jobs)
            if mined >= total - len(errors):
                break
            await asyncio.sleep(0.05)
        elapsed = time.monotonic() - t0
        print(f"sent {total} in {t_sent - t0:.2f} s over {args.connections} connections, {len(errors)} errors"
              + (f" (first: {errors[0]})" if errors else ""))
        print(f"raw transfers/s: {mined / elapsed:.0f}")
        print(f"mined: {mined} of {total} in {elapsed:.2f} s")
    finally:
        if proc:
            proc.terminate()
            proc.wait(timeout=10)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--txs", type=int, default=5000)
    p.add_argument("--senders", type=int, default=8)
    p.add_argument("--connections", type=int, default=4)
    p.add_argument("--url", help="use an already running devnode (ws://...) started with enough --accounts")
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
