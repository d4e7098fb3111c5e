"""eth_feeHistory computed from mined headers and transactions.

eth-tester's get_fee_history is wrong (pitfall 5): oldest block hard-coded to 1, the
order reversed and no rewards. This follows geth's eth/gasprice/feehistory.go:
  * oldestBlock = newest - count + 1 (clamped at genesis), count <= 1024;
  * baseFeePerGas has count + 1 entries: the last is the next block's base fee;
  * reward[i][j]: sort the block's txs by effective tip, walk their gasUsed until it
    reaches percentile[j] % of the block's gasUsed; empty blocks give zeros.
"""

from . import errors
from .hexcodec import q
from .render import effective_tip

MAX_BLOCKS = 1024
MAX_PERCENTILES = 100


def _rewards(rec, percentiles, node):
    if not percentiles:
        return None
    if not rec.tx_hashes:
        return [q(0)] * len(percentiles)
    block = node.chain.get_canonical_block_by_number(rec.number)
    pairs = []
    for tx, receipt in zip(block.transactions, rec.receipts):
        pairs.append((effective_tip(tx, rec.base_fee), int(receipt["gasUsed"], 16)))
    pairs.sort(key=lambda p: p[0])
    total = int(rec.header["gasUsed"], 16)
    out, idx, acc = [], 0, pairs[0][1]
    for p in percentiles:
        threshold = total * p / 100
        while acc < threshold and idx < len(pairs) - 1:
            idx += 1
            acc += pairs[idx][1]
        out.append(q(pairs[idx][0]))
    return out


def fee_history(node, count, newest_tag, percentiles):
    for i, p in enumerate(percentiles):
        if not isinstance(p, (int, float)) or isinstance(p, bool) or p < 0 or p > 100:
            raise errors.invalid_params(f"invalid reward percentile: {p}")
        if i > 0 and p < percentiles[i - 1]:
            raise errors.invalid_params(f"invalid reward percentile: #{i - 1}:{percentiles[i - 1]} > #{i}:{p}")
    if len(percentiles) > MAX_PERCENTILES:
        raise errors.invalid_params("too many reward percentiles")
    newest = node.resolve_number(newest_tag)
    if newest is None:  # "pending": geth reports up to the latest mined block here too
        newest = node.head_number
    count = min(count, MAX_BLOCKS, newest + 1)
    if count <= 0:
        return {"oldestBlock": q(0), "baseFeePerGas": [], "gasUsedRatio": []}
    oldest = newest - count + 1
    base_fees, ratios, blob_fees, blob_ratios, rewards = [], [], [], [], []
    for n in range(oldest, newest + 1):
        rec = node.record(n)
        base_fees.append(q(rec.base_fee))
        gas_used = int(rec.header["gasUsed"], 16)
        ratios.append(gas_used / int(rec.header["gasLimit"], 16))
        blob_fees.append(q(1))  # no blobs are ever included: the blob base fee stays at its minimum, 1 wei
        blob_ratios.append(0.0)
        r = _rewards(rec, percentiles, node)
        if r is not None:
            rewards.append(r)
    base_fees.append(q(node.next_base_fee(newest)))
    blob_fees.append(q(1))
    out = {"oldestBlock": q(oldest), "baseFeePerGas": base_fees, "gasUsedRatio": ratios,
           "baseFeePerBlobGas": blob_fees, "blobGasUsedRatio": blob_ratios}
    if percentiles:
        out["reward"] = rewards
    return out
