#!/usr/bin/env python3
"""watch_heads: one long-lived connection that prints every notification as it arrives.

  watch_heads.py --url ws://127.0.0.1:PORT/ [--subscriptions 2] [--with-logs] [--max-seconds S] [--timeout 30]

Opens ONE WebSocket connection, sends eth_subscribe ["newHeads"] --subscriptions times (and
eth_subscribe ["logs", {}] once with --with-logs), then prints, flushed, one stdout line per event:
  SUBSCRIBED {"kind": "newHeads"|"logs", "subscription": "0x.."}      once per subscription, first
  HEAD {"subscription": "0x..", "number": "0x..", "hash": "0x.."}      per newHeads notification
  LOG {"subscription": "0x..", "blockNumber": "0x..", "address": "0x..", "transactionHash": "0x..", "logIndex": "0x.."}
  OTHER {json}                                                      any other message (e.g. a late response)
It does not give up when notifications pause (the upstream node may be restarted behind the
gateway); it runs until killed (SIGTERM/SIGINT -> RESULT line, exit 0) or --max-seconds (RESULT, exit 0).
If the WebSocket itself closes it prints `CLOSED <code> <reason>` and exits 2. A notification for
an id this connection never got, or a failed subscribe, is an error (stderr, exit 1).
Connecting and each eth_subscribe response are bounded by --timeout.
"""

import asyncio
import json
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import SUB_ID_RE, base_parser, check, fail, failed, report  # noqa: E402

import websockets  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402


class Closed(Exception):
    """The WebSocket to --url closed (CLOSED line already printed)."""


def out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def subscribe(ws, rid, params, timeout, backlog):
    await ws.send(json.dumps({"jsonrpc": "2.0", "id": rid, "method": "eth_subscribe", "params": params}))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            fail(f"no eth_subscribe {params} response within {timeout}s")
        msg = json.loads(await asyncio.wait_for(ws.recv(), remaining))
        if isinstance(msg, dict) and msg.get("method") == "eth_subscription":
            backlog.append(msg)  # for an earlier subscription of ours; printed after SUBSCRIBED lines
            continue
        check(isinstance(msg, dict) and msg.get("id") == rid, "eth_subscribe response id", rid, msg)
        if "error" in msg:
            fail(f"eth_subscribe {params} failed", "a subscription id", msg["error"])
        sub_id = msg["result"]
        check(isinstance(sub_id, str) and SUB_ID_RE.match(sub_id) is not None, "subscription id format",
              "0x + 32 lowercase hex", sub_id)
        return sub_id


async def scenario(args, counts):
    ws = await asyncio.wait_for(
        websockets.connect(args.url, max_size=None, open_timeout=args.timeout,
                           ping_interval=args.ping_interval or None), args.timeout)
    kinds = {}
    backlog = []
    rid = 1
    for _ in range(args.subscriptions):
        sid = await subscribe(ws, rid, ["newHeads"], args.timeout, backlog)
        check(sid not in kinds, "distinct subscription ids on one connection", "a new id", sid)
        kinds[sid] = "newHeads"
        rid += 1
    if args.with_logs:
        sid = await subscribe(ws, rid, ["logs", {}], args.timeout, backlog)
        check(sid not in kinds, "distinct subscription ids on one connection", "a new id", sid)
        kinds[sid] = "logs"
    for sid, kind in kinds.items():
        out("SUBSCRIBED " + json.dumps({"kind": kind, "subscription": sid}))
        counts[sid] = 0

    def handle(msg):
        if not (isinstance(msg, dict) and msg.get("method") == "eth_subscription"):
            out("OTHER " + json.dumps(msg))
            return
        params = msg.get("params") or {}
        sid = params.get("subscription")
        if sid not in kinds:
            fail("notification for a subscription id this connection does not own", sorted(kinds), sid)
        res = params.get("result") or {}
        counts[sid] += 1
        if kinds[sid] == "newHeads":
            out("HEAD " + json.dumps({"subscription": sid, "number": res.get("number"), "hash": res.get("hash")}))
        else:
            out("LOG " + json.dumps({"subscription": sid, "blockNumber": res.get("blockNumber"),
                                     "address": res.get("address"), "transactionHash": res.get("transactionHash"),
                                     "logIndex": res.get("logIndex"), "removed": res.get("removed")}))

    for msg in backlog:
        handle(msg)
    try:
        while True:
            raw = await ws.recv()  # no timeout on purpose: pauses are expected; --max-seconds bounds the run
            handle(json.loads(raw))
    except ConnectionClosed:
        code = ws.close_code if ws.close_code is not None else 1006
        reason = ws.close_reason or ""
        out(f"CLOSED {code} {reason}".rstrip())
        raise Closed()


async def amain(args):
    counts = {}
    loop = asyncio.get_running_loop()
    stopped = {"by": None}

    def stop(name):
        stopped["by"] = name
        task_main.cancel()

    task_main = asyncio.create_task(scenario(args, counts))
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop, sig.name)
    timer = loop.call_later(args.max_seconds, stop, "max-seconds") if args.max_seconds else None
    try:
        await task_main
    except asyncio.CancelledError:
        if stopped["by"] is None:
            raise
    finally:
        if timer:
            timer.cancel()
    return {"stopped_by": stopped["by"], "notifications": counts, "subscriptions": len(counts)}


def main():
    p = base_parser(__doc__.splitlines()[1])
    p.add_argument("--subscriptions", type=int, default=1, help="newHeads subscriptions on the one connection")
    p.add_argument("--with-logs", action="store_true", help="also subscribe logs with an empty filter")
    p.add_argument("--max-seconds", type=float, default=0, help="stop after this long (0 = until killed)")
    p.add_argument("--ping-interval", type=float, default=20,
                   help="client WebSocket ping interval in seconds (0 = no pings)")
    args = p.parse_args()
    return report(lambda: asyncio.run(amain(args)), (Closed, lambda e: 2),
                  ((asyncio.TimeoutError, TimeoutError, OSError),
                   lambda e: failed(f"could not connect/subscribe: {e!r}")))


if __name__ == "__main__":
    sys.exit(main())
