#!/usr/bin/env python3
"""devnode: an Ethereum JSON-RPC node on loopback (py-evm via eth-tester), for tests,
load tests and the quickstart. Run with Tools/devnode/.venv/bin/python (see install.sh).

  devnode.py --host 127.0.0.1 --port 0 --chain-id 1337 --block-time-ms 0 --accounts 10 \\
             --fund 0xADDR[,0xADDR...] --fund-file PATH --balance-eth 1000000

Prints exactly one line when ready:
  devnode listening on http://127.0.0.1:PORT (ws://127.0.0.1:PORT)
"""

import asyncio
import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# servertools (Tools/shared, stdlib only): the signal helpers every tool's server shares.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "shared"))

import servertools  # noqa: E402
from evmnode import config  # noqa: E402
from evmnode.accounts import dev_accounts  # noqa: E402
from evmnode.node import Node  # noqa: E402
from evmnode.server import Server  # noqa: E402


def main(argv=None):
    servertools.unblock_stop_signals()
    args = config.parse(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="devnode: %(levelname)s %(message)s")
    dev = dev_accounts(args.accounts)
    if args.print_accounts:
        for i, (key, address) in enumerate(dev):
            sys.stderr.write(f"devnode account {i}: 0x{address.hex()} key 0x{key.hex()}\n")
    addresses = [a for _, a in dev] + [a for a in args.extra_fund if a not in {d for _, d in dev}]
    node = Node(chain_id=args.chain_id, fund_addresses=list(dict.fromkeys(addresses)),
                balance_wei=args.balance_eth * 10**18, automine=args.block_time_ms == 0,
                min_tip_wei=args.min_tip_wei, refuse_nonce_gaps=args.refuse_nonce_gaps,
                miner_tip_wei=args.miner_tip_wei)
    server = Server(node, [a for _, a in dev], args.host, args.port, args.block_time_ms)
    asyncio.run(server.serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
