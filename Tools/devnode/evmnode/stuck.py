"""Transactions the pool accepted but the miner will not include: their tip is below the miner's.

geth has two tip floors. `txpool.pricelimit` refuses a cheap tx at the door (`--min-tip-wei`,
"transaction underpriced"); `miner.gasprice` (miner_setGasPrice) lets it into the pool but the
miner skips it, so eth_sendRawTransaction returns its hash and the tx then waits forever: a
"stuck" transaction, the situation a signer has to get out of by re-sending the nonce with
higher fees. The gateway's live tests need that second behaviour (`--miner-tip-wei`,
`devnode_setMinerTip`), and these are the txs it produces.

A stuck tx cannot sit in the node's pending block (that block is what gets mined), so it waits
here. Per sender the txs form a run of consecutive nonces that starts at the sender's nonce in
the pending block: once one nonce is stuck every later one waits behind it, because blocks
hold a sender's txs in nonce order. They count as "pending" (pending nonce, txpool_status),
as in geth's pool, unlike the queued future-nonce txs that wait for a gap to close.
"""

from .render import effective_tip


def includable(tx, base_fee, miner_tip):
    """geth's miner test: the effective tip (EIP-1559 min(tipCap, feeCap - baseFee), legacy and
    2930 gasPrice - baseFee) must reach the miner's tip. Negative when the fee cap is below the
    base fee, so such a tx is never includable either."""
    return effective_tip(tx, base_fee) >= miner_tip


class StuckTxs:
    """sender -> {nonce: tx} runs of consecutive nonces, ascending, plus a hash index."""

    def __init__(self):
        self._runs = {}
        self._by_hash = {}  # hash -> (tx, sender)

    def __len__(self):
        return len(self._by_hash)

    def __contains__(self, tx_hash):
        return tx_hash in self._by_hash

    def get(self, tx_hash):
        """(tx, sender) or None."""
        return self._by_hash.get(tx_hash)

    def senders(self):
        return list(self._runs)

    def count(self, sender):
        return len(self._runs.get(sender, ()))

    def first(self, sender):
        run = self._runs.get(sender)
        return run[min(run)] if run else None

    def at(self, sender, nonce):
        return self._runs.get(sender, {}).get(nonce)

    def append(self, sender, tx):
        """tx must carry the nonce right after the sender's run (the caller checks that)."""
        self._runs.setdefault(sender, {})[tx.nonce] = tx
        self._by_hash[tx.hash] = (tx, sender)

    def replace(self, sender, tx):
        run = self._runs[sender]
        del self._by_hash[run[tx.nonce].hash]
        run[tx.nonce] = tx
        self._by_hash[tx.hash] = (tx, sender)

    def prepend(self, sender, txs):
        """txs: the sender's lower nonces, ascending, evicted from the pending block."""
        run = {tx.nonce: tx for tx in txs}
        run.update(self._runs.get(sender, {}))
        self._runs[sender] = run
        for tx in txs:
            self._by_hash[tx.hash] = (tx, sender)

    def pop_first(self, sender):
        run = self._runs[sender]
        tx = run.pop(min(run))
        del self._by_hash[tx.hash]
        if not run:
            del self._runs[sender]
        return tx

    def pop_all(self, sender):
        run = self._runs.pop(sender, {})
        for tx in run.values():
            del self._by_hash[tx.hash]
        return [run[n] for n in sorted(run)]

    def clear(self):
        self._runs.clear()
        self._by_hash.clear()
