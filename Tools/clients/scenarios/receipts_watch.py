"""Receipt streams the gateway serves itself.

1. `signer_sendTransactionAndWatch(tx, {"confirmations": N})`: the answer is a subscription id, then notifications
   in this order: {"event":"sent"}, {"event":"mined","receipt"}, {"event":"confirmation","confirmations":1..N}.
   Nothing may arrive before the answer.
2. `eth_subscribe("transactionReceipts", {"transactionHashes": [h]})` on a second connection, for a transaction
   sent by the first: one notification whose result is an ARRAY holding h's receipt (geth ≥ 1.16.5 form).
Needs a node that makes blocks on its own (block time > 0) for the confirmations.
"""

import asyncio
import json
import sys

import websockets

from _common import base_parser, check, emit_result, run_main


async def recv(ws, timeout):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def scenario(args):
    tx = {"from": args.sender, "to": args.sender, "value": "0x1"}
    async with websockets.connect(args.url) as a, websockets.connect(args.url) as b:
        await a.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "signer_sendTransactionAndWatch",
                                 "params": [tx, {"confirmations": args.confirmations}]}))
        first = await recv(a, args.timeout)
        check(first.get("id") == 1 and isinstance(first.get("result"), str),
              "the answer (with the subscription id) comes first", "a result", first)
        sub = first["result"]
        events = []
        while not (events and events[-1].get("event") == "confirmation"
                   and events[-1].get("confirmations") == args.confirmations):
            note = await recv(a, args.timeout)
            check(note.get("method") == "eth_subscription" and note["params"]["subscription"] == sub,
                  "only notifications of the watch arrive", sub, note)
            events.append(note["params"]["result"])
        kinds = [e["event"] for e in events]
        expected = ["sent", "mined"] + ["confirmation"] * args.confirmations
        check(kinds == expected, "event order", expected, kinds)
        check([e["confirmations"] for e in events[2:]] == list(range(1, args.confirmations + 1)),
              "confirmations count up", list(range(1, args.confirmations + 1)), [e["confirmations"] for e in events[2:]])
        tx_hash = events[0]["transactionHash"]
        check(events[1]["receipt"]["transactionHash"] == tx_hash, "the receipt is the sent transaction's",
              tx_hash, events[1]["receipt"].get("transactionHash"))

        # A second transaction from connection A, watched by hash from connection B.
        await a.send(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "eth_sendTransaction", "params": [tx]}))
        while True:
            answer = await recv(a, args.timeout)
            if answer.get("id") == 2:
                break
        check("result" in answer, "eth_sendTransaction answered", "a hash", answer)
        second = answer["result"]
        await b.send(json.dumps({"jsonrpc": "2.0", "id": 7, "method": "eth_subscribe",
                                 "params": ["transactionReceipts", {"transactionHashes": [second]}]}))
        subscribed = await recv(b, args.timeout)
        check(isinstance(subscribed.get("result"), str), "transactionReceipts subscription created", "an id", subscribed)
        note = await recv(b, args.timeout)
        receipts = note["params"]["result"]
        check(isinstance(receipts, list) and len(receipts) == 1 and receipts[0]["transactionHash"] == second,
              "an array with the watched receipt", [second], receipts)
        bad = {"jsonrpc": "2.0", "id": 8, "method": "eth_subscribe",
               "params": ["transactionReceipts", {"transactionHashes": ["0x12"]}]}
        await b.send(json.dumps(bad))
        refused = await recv(b, args.timeout)
        check(refused.get("error", {}).get("code") == -32602, "a malformed hash is -32602", -32602, refused)
    return {"events": kinds, "watched_by_hash": second}


def main():
    p = base_parser(__doc__.splitlines()[0])
    p.add_argument("--sender", required=True, help="an account of the gateway's wallet, funded on the node")
    p.add_argument("--confirmations", type=int, default=3)
    args = p.parse_args()
    return run_main(lambda: scenario(args))


if __name__ == "__main__":
    sys.exit(main())
