"""Shared helpers for the client scenarios (imported by the scripts beside it).

Contract every scenario follows:
  * success: the last line on stdout is `RESULT {json}`, exit code 0;
  * failure: a message saying what differed (expected vs got) on stderr, exit code 1;
  * every network wait is bounded by a timeout (default 30 s).
"""

import argparse
import asyncio
import json
import re
import signal
import sys

DEFAULT_TIMEOUT = 30.0

# Started from Swift tests, we may inherit a mask with SIGTERM/SIGINT blocked (Dispatch threads block every
# signal): unblock them so that the test can stop a scenario with SIGTERM.
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
SUB_ID_RE = re.compile(r"^0x[0-9a-f]{32}$")


class ScenarioFailure(Exception):
    """A check did not hold. The message says what was expected and what came."""


def fail(what, expected=None, got=None):
    msg = what
    if expected is not None or got is not None:
        msg += f"\n  expected: {expected!r}\n  got:      {got!r}"
    raise ScenarioFailure(msg)


def check(cond, what, expected=None, got=None):
    if not cond:
        fail(what, expected, got)


def base_parser(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--url", required=True, help="ws://127.0.0.1:PORT/ of the gateway (or a node)")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                   help="seconds any single network wait may take (default 30)")
    return p


def emit_result(payload):
    sys.stdout.write("RESULT " + json.dumps(payload, sort_keys=True) + "\n")
    sys.stdout.flush()


def failed(message):
    """`FAIL: message` on stderr; exit code 1."""
    sys.stderr.write(f"FAIL: {message}\n")
    sys.stderr.flush()
    return 1


def report(run, *handlers):
    """A scenario's exit code: run()'s result as the RESULT line and 0, or a ScenarioFailure as `FAIL: ...` and 1.
    handlers: (exception type(s), exception -> exit code) for the other exceptions the scenario expects."""
    try:
        result = run()
    except ScenarioFailure as e:
        return failed(e)
    except BaseException as e:
        for types, handle in handlers:
            if isinstance(e, types):
                return handle(e)
        raise
    emit_result(result)
    return 0


def run_main(coro_factory):
    """Run the scenario coroutine; map failures to stderr + exit 1."""
    return report(lambda: asyncio.run(coro_factory()),
                  ((asyncio.TimeoutError, TimeoutError), lambda e: failed(f"timed out waiting: {e!r}")),
                  (KeyboardInterrupt, lambda e: 130),
                  (Exception, _unexpected))  # report anything unexpected as a failure


def _unexpected(e):
    import traceback
    traceback.print_exc()
    return failed(f"unexpected {type(e).__name__}: {e}")


def normalize_key(key):
    key = key.strip()
    return key if key.startswith("0x") else "0x" + key


# ---- raw transfers through a `websockets` connection (for scenarios without web3) ----

class RawRpc:
    """Minimal JSON-RPC over one `websockets` connection that tolerates interleaved
    subscription notifications (they are handed to `on_notification`)."""

    def __init__(self, ws, timeout=DEFAULT_TIMEOUT, on_notification=None):
        self.ws = ws
        self.timeout = timeout
        self.next_id = 1
        self.on_notification = on_notification

    async def call(self, method, params=None):
        """The result; an error answer fails the scenario."""
        result, error = await self.call_outcome(method, params)
        if error is not None:
            fail(f"{method} returned an error", "a result", error)
        return result

    async def call_outcome(self, method, params=None):
        """-> (result, None) or (None, error object): for checks that expect errors."""
        rid = self.next_id
        self.next_id += 1
        await self.ws.send(json.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params or []}))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                fail(f"no response to {method} within {self.timeout}s")
            raw = await asyncio.wait_for(self.ws.recv(), remaining)
            msg = json.loads(raw)
            if isinstance(msg, dict) and msg.get("method") == "eth_subscription":
                if self.on_notification:
                    self.on_notification(msg)
                continue
            if isinstance(msg, dict) and msg.get("id") == rid:
                if "error" in msg:
                    return None, msg["error"]
                return msg.get("result"), None
            fail(f"unexpected message while waiting for {method}", f"response with id {rid}", msg)


class TransferPump:
    """Sends 1-wei EIP-1559 self-transfers signed with eth-account, to make an
    automining node produce blocks. Uses its own RawRpc."""

    def __init__(self, rpc, private_key):
        from eth_account import Account  # imported lazily: only scenarios with --private-key need it
        self.rpc = rpc
        self.account = Account.from_key(normalize_key(private_key))
        self.nonce = None
        self.chain_id = None
        self.sent = 0

    async def send_one(self):
        if self.nonce is None:
            self.chain_id = int(await self.rpc.call("eth_chainId"), 16)
            self.nonce = int(await self.rpc.call("eth_getTransactionCount", [self.account.address, "pending"]), 16)
        block = await self.rpc.call("eth_getBlockByNumber", ["latest", False])
        base = int(block.get("baseFeePerGas", "0x0"), 16)
        tip = 10**9
        tx = {"type": 2, "chainId": self.chain_id, "nonce": self.nonce, "to": self.account.address,
              "value": 1, "gas": 21000, "maxPriorityFeePerGas": tip, "maxFeePerGas": 2 * base + tip}
        signed = self.account.sign_transaction(tx)
        raw = "0x" + bytes(signed.raw_transaction).hex()
        txhash = await self.rpc.call("eth_sendRawTransaction", [raw])
        self.nonce += 1
        self.sent += 1
        return txhash
