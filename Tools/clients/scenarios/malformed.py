#!/usr/bin/env python3
"""malformed: bad input on one connection must not disturb another (geth's wire behaviour).

  malformed.py --url ws://127.0.0.1:PORT/ --max-frame-bytes N [--private-key 0xKEY] [--timeout 30]
               [--skip CHECK,...]

Connection A subscribes newHeads and counts heads for the whole run (with --private-key a third
connection sends 1-wei transfers whenever no head came for a second, for automining nodes).
Connection B sends, one at a time, and expects exactly:
  parse_error        `{bad json`                              -> -32700, id null
  invalid_method     {"jsonrpc":"2.0","id":1,"method":5}      -> -32600, id 1
  empty_batch        `[]`                                     -> one object, -32600 "empty batch", id null
  batch_too_large    1001 x eth_chainId                       -> array of exactly 1, -32600 "batch too large"
  mixed_batch        [valid, 5, valid]                        -> array of 3 in order, middle -32600
  unknown_method     foo_bar with id "abc"                    -> -32601 "the method foo_bar does not exist/is not available"
  id_0 id_string id_null id_float id_2pow64                   -> id echoed byte-for-byte (0, "x", null, 1.5, 18446744073709551616)
  binary_frame       the same requests as BINARY frames       -> the same answers as text frames
  viem_keepalive     net_version with "id": null              -> answered with id null, B stays usable
  invalid_params     eth_getBalance ["nothex","latest"]       -> -32602
  oversize_frame     one frame of N+1 bytes                   -> server closes B with close code 1009
Then A must still be open and receive a head after B was closed.
Prints `RESULT {json}` listing every check with "pass"; on the first failure says what differed
(stderr) and exits 1.
"""

import asyncio
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import RawRpc, TransferPump, base_parser, check, fail, run_main  # noqa: E402

import websockets  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402


class Num:
    """A JSON number kept as the exact text the server wrote (to check ids byte for byte)."""

    def __init__(self, text):
        self.text = text

    def __eq__(self, other):
        return isinstance(other, Num) and other.text == self.text

    def __repr__(self):
        return self.text


def loads_exact(raw):
    """json.loads that keeps every number as its literal text (Num)."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    return json.loads(raw, parse_int=Num, parse_float=Num)


def err_code(msg):
    e = msg.get("error") if isinstance(msg, dict) else None
    if not isinstance(e, dict) or not isinstance(e.get("code"), Num):
        return None
    return int(e["code"].text)


def chain_call(id_json):
    return '{"jsonrpc":"2.0","id":%s,"method":"eth_chainId","params":[]}' % id_json


class Watcher:
    """Connection A: a newHeads subscription whose heads are timestamped."""

    def __init__(self):
        self.ws = None
        self.sub_id = None
        self.heads = []  # (monotonic time, number)
        self.task = None
        self.error = None

    async def start(self, url, timeout):
        self.ws = await asyncio.wait_for(websockets.connect(url, open_timeout=timeout), timeout)
        await self.ws.send('{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["newHeads"]}')
        msg = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        check(msg.get("id") == 1 and isinstance(msg.get("result"), str), "A: eth_subscribe newHeads",
              "a subscription id", msg)
        self.sub_id = msg["result"]
        self.task = asyncio.create_task(self._read())

    async def _read(self):
        try:
            async for raw in self.ws:
                msg = json.loads(raw)
                p = msg.get("params") or {}
                if msg.get("method") == "eth_subscription" and p.get("subscription") == self.sub_id:
                    self.heads.append((time.monotonic(), int(p["result"]["number"], 16)))
                else:
                    self.error = f"A: unexpected message {msg!r}"
        except ConnectionClosed as e:
            self.error = f"A: connection closed ({e})"

    async def wait_heads(self, count, timeout, what):
        deadline = time.monotonic() + timeout
        while len(self.heads) < count:
            if self.error:
                fail(what, "A open and receiving heads", self.error)
            if time.monotonic() > deadline:
                fail(what, f">= {count} heads on A", len(self.heads))
            await asyncio.sleep(0.05)


class Prober:
    """Connection B: one request (or raw frame) at a time, one answer each."""

    def __init__(self, url, timeout):
        self.url, self.timeout = url, timeout
        self.ws = None

    async def open(self):
        # max_size=None: a 1001-element answer may be big; the point is the server's limits.
        self.ws = await asyncio.wait_for(websockets.connect(self.url, max_size=None, open_timeout=self.timeout,
                                                            ping_interval=None), self.timeout)

    async def ask(self, text, binary=False):
        await self.ws.send(text.encode() if binary else text)
        raw = await asyncio.wait_for(self.ws.recv(), self.timeout)
        return raw, loads_exact(raw)


async def run_checks(b, args, passed):
    skip = set(filter(None, (args.skip or "").split(",")))

    async def step(name, fn):
        if name in skip:
            passed[name] = "skipped"
            return
        await fn()
        passed[name] = "pass"

    async def parse_error():
        _, m = await b.ask("{bad json")
        check(isinstance(m, dict) and err_code(m) == -32700 and m.get("id", "missing") is None,
              "parse_error: `{bad json`", "object, error -32700, id null", m)

    async def invalid_method():
        _, m = await b.ask('{"jsonrpc":"2.0","id":1,"method":5}')
        check(isinstance(m, dict) and err_code(m) == -32600 and m.get("id") == Num("1"),
              'invalid_method: {"method":5}', "error -32600, id 1", m)

    async def empty_batch():
        _, m = await b.ask("[]")
        check(isinstance(m, dict) and err_code(m) == -32600 and m["error"].get("message") == "empty batch"
              and m.get("id", "missing") is None, "empty_batch: `[]`",
              'ONE object, error -32600 "empty batch", id null', m)

    async def batch_too_large():
        raw, m = await b.ask("[" + ",".join(chain_call(i + 1) for i in range(1001)) + "]")
        check(isinstance(m, list) and len(m) == 1, "batch_too_large: 1001 calls answered with",
              "a JSON array of exactly one element", m if not isinstance(m, list) else f"array of {len(m)}")
        e = m[0]
        check(err_code(e) == -32600 and e["error"].get("message") == "batch too large",
              "batch_too_large: the element", 'error -32600 "batch too large"', e)
        # geth puts the first call's id on it, simpler servers null: either is fine.
        check(e.get("id", "missing") in (None, Num("1")), "batch_too_large: id", "null or 1 (first call)", e.get("id"))

    async def mixed_batch():
        _, m = await b.ask("[" + chain_call(1) + ",5," + chain_call(2) + "]")
        check(isinstance(m, list) and len(m) == 3, "mixed_batch: [valid, 5, valid] answered with",
              "an array of 3", m)
        check(m[0].get("id") == Num("1") and "result" in m[0], "mixed_batch[0]", "id 1 with a result", m[0])
        check(err_code(m[1]) == -32600 and m[1].get("id", "missing") is None, "mixed_batch[1] (the bare 5)",
              "error -32600, id null", m[1])
        check(m[2].get("id") == Num("2") and "result" in m[2], "mixed_batch[2]", "id 2 with a result", m[2])

    unknown = '{"jsonrpc":"2.0","id":"abc","method":"foo_bar"}'
    text_answers = {}

    async def unknown_method():
        _, m = await b.ask(unknown)
        check(isinstance(m, dict) and err_code(m) == -32601 and m.get("id") == "abc"
              and m["error"].get("message") == "the method foo_bar does not exist/is not available",
              "unknown_method: foo_bar", 'error -32601 "the method foo_bar does not exist/is not available", id "abc"', m)
        text_answers[unknown] = m

    def id_echo(id_json, expect):
        async def fn():
            _, m = await b.ask(chain_call(id_json))
            check(isinstance(m, dict) and "result" in m, f"id {id_json}: eth_chainId", "a result", m)
            check("id" in m and m["id"] == expect, f"id {id_json} echoed exactly", id_json,
                  m.get("id", "<missing>"))
            text_answers[chain_call(id_json)] = m
        return fn

    async def binary_frame():
        for req in (chain_call('"x"'), unknown, '{"jsonrpc":"2.0","id":7,"method":"eth_getBalance",'
                    '"params":["0x0000000000000000000000000000000000000000","latest"]}'):
            if req not in text_answers:
                _, text_answers[req] = await b.ask(req)
            _, m = await b.ask(req, binary=True)
            check(m == text_answers[req], f"binary_frame: {req}", text_answers[req], m)

    async def viem_keepalive():
        _, m = await b.ask('{"jsonrpc":"2.0","id":null,"method":"net_version"}')
        check(isinstance(m, dict) and "id" in m and m["id"] is None and isinstance(m.get("result"), str),
              "viem_keepalive: net_version with id null", "a string result with id null", m)
        _, m2 = await b.ask(chain_call(11))
        check(m2.get("id") == Num("11") and "result" in m2, "viem_keepalive: connection still usable",
              "eth_chainId answered", m2)

    async def invalid_params():
        _, m = await b.ask('{"jsonrpc":"2.0","id":12,"method":"eth_getBalance","params":["nothex","latest"]}')
        check(isinstance(m, dict) and err_code(m) == -32602 and m.get("id") == Num("12"),
              'invalid_params: eth_getBalance ["nothex","latest"]', "error -32602, id 12", m)

    async def oversize_frame():
        head = '{"jsonrpc":"2.0","id":13,"method":"eth_chainId","params":[],"pad":"'
        tail = '"}'
        size = args.max_frame_bytes + 1
        frame = head + "a" * (size - len(head) - len(tail)) + tail
        assert len(frame.encode()) == size
        try:
            await asyncio.wait_for(b.ws.send(frame), args.timeout)
            # The server must not answer it; it closes. Read until the close arrives.
            while True:
                raw = await asyncio.wait_for(b.ws.recv(), args.timeout)
                fail("oversize_frame: server answered instead of closing", "close code 1009", raw[:200])
        except ConnectionClosed:
            pass
        rcvd = b.ws.protocol.close_rcvd
        got = (rcvd.code, rcvd.reason) if rcvd is not None else "no close frame (abnormal closure 1006)"
        check(rcvd is not None and rcvd.code == 1009, f"oversize_frame: {size}-byte frame", "close code 1009", got)

    steps = [
        ("parse_error", parse_error),
        ("invalid_method", invalid_method),
        ("empty_batch", empty_batch),
        ("batch_too_large", batch_too_large),
        ("mixed_batch", mixed_batch),
        ("unknown_method", unknown_method),
        ("id_0", id_echo("0", Num("0"))),
        ("id_string", id_echo('"x"', "x")),
        ("id_null", id_echo("null", None)),
        ("id_float", id_echo("1.5", Num("1.5"))),
        ("id_2pow64", id_echo(str(2**64), Num(str(2**64)))),
        ("binary_frame", binary_frame),
        ("viem_keepalive", viem_keepalive),
        ("invalid_params", invalid_params),
        ("oversize_frame", oversize_frame),
    ]
    for name, fn in steps:
        await step(name, fn)


async def _pump(pump, a):
    last = -1
    while True:
        if len(a.heads) == last:
            await pump.send_one()
        last = len(a.heads)
        await asyncio.sleep(1.0)


async def scenario(args):
    a = Watcher()
    b = Prober(args.url, args.timeout)
    passed = {}
    pump = pump_task = None
    try:
        await a.start(args.url, args.timeout)
        if args.private_key:
            pump_ws = await asyncio.wait_for(websockets.connect(args.url, open_timeout=args.timeout), args.timeout)
            pump = TransferPump(RawRpc(pump_ws, args.timeout), args.private_key)
            pump_task = asyncio.create_task(_pump(pump, a))
        await a.wait_heads(1, args.timeout, "A: first head before the malformed input")
        heads_before = len(a.heads)
        await b.open()
        t0 = time.monotonic()
        await run_checks(b, args, passed)
        b_closed_at = time.monotonic()
        if passed.get("oversize_frame") != "pass":
            await b.ws.close()
        check(a.ws.state.name == "OPEN" and a.error is None, "A after B's checks", "open, no error",
              a.error or a.ws.state.name)
        n_at_close = len(a.heads)
        await a.wait_heads(n_at_close + 1, args.timeout, "A: a head after B was closed")
        passed["a_alive_after_b_closed"] = "pass"
        times = [t for t, _ in a.heads]
        gaps = [y - x for x, y in zip(times, times[1:])]
        nums = [n for _, n in a.heads]
        check(all(y == x + 1 for x, y in zip(nums, nums[1:])), "A: consecutive head numbers", "n, n+1, ...", nums)
        return {
            "checks": passed,
            "heads_a_total": len(a.heads),
            "heads_a_before_b": heads_before,
            "heads_a_during_b": n_at_close - heads_before,
            "b_seconds": round(b_closed_at - t0, 3),
            "max_head_gap_seconds": round(max(gaps), 3) if gaps else None,
            "pump_txs": pump.sent if pump else 0,
        }
    except BaseException:
        if passed:
            sys.stderr.write("checks passed before the failure: " + ", ".join(passed) + "\n")
        raise
    finally:
        if pump_task:
            pump_task.cancel()
            await asyncio.gather(pump_task, return_exceptions=True)
            await pump.rpc.ws.close()
        if a.task:
            a.task.cancel()
            await asyncio.gather(a.task, return_exceptions=True)
        for ws in (a.ws, b.ws):
            if ws is not None:
                await ws.close()


def main():
    p = base_parser(__doc__.splitlines()[1])
    p.add_argument("--max-frame-bytes", type=int, required=True,
                   help="the server's WebSocket read limit; a frame one byte larger must be closed with 1009")
    p.add_argument("--private-key", default=None, help="funded key; sends transfers to make blocks")
    p.add_argument("--skip", default="", help="comma-separated check names to skip (reported as skipped)")
    args = p.parse_args()
    return run_main(lambda: scenario(args))


if __name__ == "__main__":
    sys.exit(main())
