"""Command-line flags."""

import argparse

from . import hexcodec
from .errors import RpcError


def _address_list(text, source):
    out = []
    for line in text.replace(",", "\n").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            out.append(hexcodec.address(line))
        except RpcError:
            raise SystemExit(f"devnode: {source}: not an address: {line!r}")
    return out


def parse(argv=None):
    p = argparse.ArgumentParser(prog="devnode.py", description="Ethereum JSON-RPC dev node (py-evm) on loopback.")
    p.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8545, help="TCP port; 0 picks a free one (default 8545)")
    p.add_argument("--chain-id", type=int, default=1337, help="chain id (default 1337)")
    p.add_argument("--block-time-ms", type=int, default=0,
                   help="0 = automine one block per tx (default); N = mine every N ms, empty blocks included")
    p.add_argument("--accounts", type=int, default=10, help="number of funded deterministic dev accounts (default 10)")
    p.add_argument("--fund", action="append", default=[], metavar="0xADDR[,0xADDR...]",
                   help="extra addresses to fund at genesis (repeatable)")
    p.add_argument("--fund-file", action="append", default=[], metavar="PATH",
                   help="file with one address per line to fund at genesis ('#' comments allowed)")
    p.add_argument("--balance-eth", type=int, default=1_000_000, help="genesis balance per funded address in ETH")
    p.add_argument("--min-tip-wei", type=int, default=1,
                   help="txs whose priority fee (legacy: gas price) is lower get 'transaction underpriced' (geth txpool.pricelimit, default 1)")
    p.add_argument("--miner-tip-wei", type=int, default=0,
                   help="txs whose effective tip is lower are accepted but not mined until the tip is lowered "
                        "(devnode_setMinerTip) or they are replaced (geth miner.gasprice, default 0)")
    p.add_argument("--refuse-nonce-gaps", action="store_true",
                   help="answer 'nonce too high' for future nonces instead of queueing them like geth")
    p.add_argument("--print-accounts", action="store_true", help="print dev addresses and private keys to stderr at start")
    args = p.parse_args(argv)
    if args.accounts < 0 or args.block_time_ms < 0 or args.miner_tip_wei < 0 or args.chain_id <= 0:
        p.error("--accounts, --block-time-ms and --miner-tip-wei must be >= 0, --chain-id > 0")
    extra = []
    for item in args.fund:
        extra += _address_list(item, "--fund")
    for path in args.fund_file:
        with open(path, encoding="utf-8") as f:
            extra += _address_list(f.read(), path)
    args.extra_fund = extra
    return args
