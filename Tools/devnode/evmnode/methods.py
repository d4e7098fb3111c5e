"""The JSON-RPC method table. Each handler takes (ctx, params) and returns a JSON value."""

from eth_bloom import BloomFilter

from . import errors, execution, feehistory, hexcodec
from .hexcodec import b, q
from .logfilter import LogFilter

CLIENT_VERSION = "devnode/v0.1.0/py-evm-0.12.1b1/eth-tester-0.14.0b1"
DEFAULT_TIP_WEI = 10**9  # suggested priority fee: 1 gwei (geth's dev-mode oracle floor)
MAX_LOG_RANGE = 100_000  # blocks per eth_getLogs query; keeps one request from stalling the node


class Context:
    """Per-request view: the node, the subscription hub and the connection (None over HTTP)."""

    def __init__(self, node, hub, accounts, conn=None):
        self.node, self.hub, self.accounts, self.conn = node, hub, accounts, conn


def _args(params, required, maximum):
    if params is None:
        params = []
    if not isinstance(params, list):
        raise errors.invalid_params("non-array args")
    if len(params) > maximum:
        raise errors.invalid_params(f"too many arguments, want at most {maximum}")
    if len(params) < required:
        raise errors.invalid_params(f"missing value for required argument {len(params)}")
    return params + [None] * (maximum - len(params))


def _tag(value, default="latest"):
    return default if value is None else hexcodec.block_tag(value)


# ---------------------------------------------------------------- chain info

def chain_id(ctx, params):
    _args(params, 0, 0)
    return q(ctx.node.chain_id)


def net_version(ctx, params):
    _args(params, 0, 0)
    return str(ctx.node.chain_id)


def client_version(ctx, params):
    _args(params, 0, 0)
    return CLIENT_VERSION


def block_number(ctx, params):
    _args(params, 0, 0)
    return q(ctx.node.head_number)


def accounts(ctx, params):
    _args(params, 0, 0)
    return [hexcodec.addr(a) for a in ctx.accounts]


def gas_price(ctx, params):
    _args(params, 0, 0)
    return q(ctx.node.pending_base_fee + DEFAULT_TIP_WEI)


def max_priority_fee(ctx, params):
    _args(params, 0, 0)
    return q(DEFAULT_TIP_WEI)


def fee_history(ctx, params):
    count, newest, percentiles = _args(params, 2, 3)
    count = hexcodec.quantity_or_decimal(count, "blockCount")
    if percentiles is not None and not isinstance(percentiles, list):
        raise errors.invalid_params("invalid argument 2: rewardPercentiles must be an array")
    return feehistory.fee_history(ctx.node, count, hexcodec.block_tag(newest), percentiles or [])


# ---------------------------------------------------------------- state

def get_balance(ctx, params):
    a, tag = _args(params, 1, 2)
    return q(ctx.node.state_at(_tag(tag)).get_balance(hexcodec.address(a)))


def get_transaction_count(ctx, params):
    # "pending" is geth's pool nonce: the pending block's state (txs not yet mined, interval
    # mode) plus txs the miner skips for their low tip, which are pending all the same.
    a, tag = _args(params, 1, 2)
    a, tag = hexcodec.address(a), _tag(tag)
    if tag == "pending":
        return q(ctx.node.pool_nonce(a))
    return q(ctx.node.state_at(tag).get_nonce(a))


def get_code(ctx, params):
    a, tag = _args(params, 1, 2)
    return b(ctx.node.state_at(_tag(tag)).get_code(hexcodec.address(a)))


def get_storage_at(ctx, params):
    a, slot, tag = _args(params, 2, 3)
    value = ctx.node.state_at(_tag(tag)).get_storage(hexcodec.address(a), hexcodec.quantity(slot, "slot"))
    return hexcodec.h32(value)


def _call_args(ctx, obj):
    if not isinstance(obj, dict):
        raise errors.invalid_params("invalid argument 0: transaction call object expected")
    if "data" in obj and "input" in obj and obj["data"] != obj["input"]:
        raise errors.invalid_params('both "data" and "input" are set and not equal. Please use "input" to pass transaction call data')
    raw = obj.get("input", obj.get("data"))
    sender = hexcodec.address(obj["from"], "from") if obj.get("from") else ctx.accounts[0] if ctx.accounts else b"\x00" * 20
    return execution.CallArgs(
        sender=sender,
        to=hexcodec.address(obj["to"], "to") if obj.get("to") else None,
        gas=hexcodec.quantity(obj["gas"], "gas", 64) if obj.get("gas") is not None else None,
        value=hexcodec.quantity(obj["value"], "value") if obj.get("value") is not None else 0,
        data=hexcodec.data(raw, "input") if raw is not None else b"",
    )


def _exec_vm(ctx, tag):
    number = ctx.node.resolve_number(tag)
    return ctx.node.vm_at(ctx.node.head_number if number is None else number)


def call(ctx, params):
    obj, tag, _overrides = _args(params, 1, 3)
    args = _call_args(ctx, obj)
    return b(execution.call(_exec_vm(ctx, _tag(tag)), args, ctx.node.block_gas_limit))


def estimate_gas(ctx, params):
    obj, tag, _overrides = _args(params, 1, 3)
    args = _call_args(ctx, obj)
    return q(execution.estimate_gas(_exec_vm(ctx, _tag(tag)), args, ctx.node.block_gas_limit))


# ---------------------------------------------------------------- transactions

def send_raw_transaction(ctx, params):
    (raw,) = _args(params, 1, 1)
    return b(ctx.node.send_raw(hexcodec.data(raw, "input")))


def get_transaction_by_hash(ctx, params):
    (h,) = _args(params, 1, 1)
    found = ctx.node.find_tx(hexcodec.hash32(h))
    if found is None:
        return None
    if found[0] == "pending":
        return found[1]
    _, rec, index = found
    return rec.txs[index]


def get_transaction_receipt(ctx, params):
    (h,) = _args(params, 1, 1)
    found = ctx.node.find_tx(hexcodec.hash32(h))
    if found is None or found[0] == "pending":
        return None
    _, rec, index = found
    return rec.receipts[index]


# ---------------------------------------------------------------- blocks

def _record_for(ctx, tag):
    if isinstance(tag, tuple):
        return ctx.node.record_by_hash(tag[1])
    if tag in ("latest", "safe", "finalized"):
        return ctx.node.record(ctx.node.head_number)
    if tag == "earliest":
        return ctx.node.record(0)
    return ctx.node.record(tag)


def _full_flag(value):
    if value is None:
        return False
    if not isinstance(value, bool):
        raise errors.invalid_params("invalid argument 1: json: cannot unmarshal into Go value of type bool")
    return value


def get_block_by_number(ctx, params):
    tag, full = _args(params, 2, 2)
    tag, full = hexcodec.block_tag(tag), _full_flag(full)
    if tag == "pending":
        return ctx.node.pending_block_json(full)
    rec = _record_for(ctx, tag)
    return rec.block_json(full) if rec else None


def get_block_by_hash(ctx, params):
    h, full = _args(params, 2, 2)
    rec = ctx.node.record_by_hash(hexcodec.hash32(h))
    return rec.block_json(_full_flag(full)) if rec else None


def get_block_receipts(ctx, params):
    (tag,) = _args(params, 1, 1)
    tag = hexcodec.block_tag(tag)
    if tag == "pending":
        return None
    rec = _record_for(ctx, tag)
    return list(rec.receipts) if rec else None


def get_block_tx_count_by_number(ctx, params):
    (tag,) = _args(params, 1, 1)
    tag = hexcodec.block_tag(tag)
    if tag == "pending":
        return q(ctx.node.pending_count())
    rec = _record_for(ctx, tag)
    return q(len(rec.tx_hashes)) if rec else None


# ---------------------------------------------------------------- logs

def _bloom_may_match(bloom_int, flt):
    bloom = BloomFilter(bloom_int)
    if flt.addresses and not any(bytes.fromhex(a[2:]) in bloom for a in flt.addresses):
        return False
    for options in flt.topics:
        if options and not any(bytes.fromhex(t[2:]) in bloom for t in options):
            return False
    return True


def get_logs(ctx, params):
    (obj,) = _args(params, 1, 1)
    flt = LogFilter.parse(obj)
    obj = obj or {}
    node = ctx.node
    if obj.get("blockHash") is not None:
        if obj.get("fromBlock") is not None or obj.get("toBlock") is not None:
            raise errors.invalid_params("invalid argument 0: cannot specify both BlockHash and FromBlock/ToBlock, choose one or the other")
        rec = node.record_by_hash(hexcodec.hash32(obj["blockHash"], "blockHash"))
        if rec is None:
            raise errors.RpcError(errors.SERVER_ERROR, "unknown block")
        return [log for log in rec.logs if flt.matches(log)]

    def bound(value):
        tag = _tag(value)
        if tag in ("latest", "pending", "safe", "finalized"):
            return node.head_number
        if tag == "earliest":
            return 0
        if isinstance(tag, tuple):
            raise errors.invalid_params("invalid argument 0: block hash not allowed in fromBlock/toBlock")
        return tag

    lo, hi = bound(obj.get("fromBlock")), min(bound(obj.get("toBlock")), node.head_number)
    if lo > hi:
        if lo > node.head_number:
            return []
        raise errors.RpcError(errors.SERVER_ERROR, "invalid block range params")
    if hi - lo >= MAX_LOG_RANGE:
        raise errors.RpcError(-32005, f"query exceeds max block range {MAX_LOG_RANGE}")
    out = []
    selective = bool(flt.addresses) or any(flt.topics)
    for n in range(lo, hi + 1):
        if selective and not _bloom_may_match(node.header_at(n).bloom, flt):
            continue
        out.extend(log for log in node.record(n).logs if flt.matches(log))
    return out


# ---------------------------------------------------------------- subscriptions

def subscribe(ctx, params):
    if ctx.conn is None:
        raise errors.RpcError(errors.METHOD_NOT_FOUND, "notifications not supported")
    return ctx.hub.subscribe(ctx.conn, params if isinstance(params, list) else [])


def unsubscribe(ctx, params):
    if ctx.conn is None:
        raise errors.RpcError(errors.METHOD_NOT_FOUND, "notifications not supported")
    (sub_id,) = _args(params, 1, 1)
    return ctx.hub.unsubscribe(ctx.conn, sub_id)


def devnode_subscriptions(ctx, params):
    """Introspection for tests of proxies in front of this node: how many live subscriptions of each kind the node
    itself holds (a multiplexing gateway must hold one per distinct kind+params, whatever its client count)."""
    counts = {}
    for sub in ctx.hub.all():
        counts[sub.kind] = counts.get(sub.kind, 0) + 1
    return counts


# ---------------------------------------------------------------- test control: the pool

def devnode_set_miner_tip(ctx, params):
    """geth's miner_setGasPrice: txs paying a lower effective tip are still accepted but not mined
    (stuck), so a gateway's tests can make a transaction hang the way it does on a real chain."""
    (tip,) = _args(params, 1, 1)
    ctx.node.set_miner_tip(hexcodec.quantity(tip, "tip"))
    return True


def devnode_drop_pending(ctx, params):
    """Empties the txpool while keeping the chain, as a restarted node that lost its mempool, so
    tests can check that a signer notices and re-sends. Returns how many txs were dropped."""
    _args(params, 0, 0)
    return ctx.node.drop_pool()


def txpool_status(ctx, params):
    """geth's txpool_status, also as devnode_txpoolStatus: tests check what the pool holds."""
    _args(params, 0, 0)
    return {k: q(v) for k, v in ctx.node.pool_status().items()}


METHODS = {
    "devnode_subscriptions": devnode_subscriptions,
    "devnode_setMinerTip": devnode_set_miner_tip,
    "devnode_dropPending": devnode_drop_pending,
    "devnode_txpoolStatus": txpool_status,
    "txpool_status": txpool_status,
    "eth_chainId": chain_id,
    "net_version": net_version,
    "web3_clientVersion": client_version,
    "eth_blockNumber": block_number,
    "eth_accounts": accounts,
    "eth_gasPrice": gas_price,
    "eth_maxPriorityFeePerGas": max_priority_fee,
    "eth_feeHistory": fee_history,
    "eth_getBalance": get_balance,
    "eth_getTransactionCount": get_transaction_count,
    "eth_getCode": get_code,
    "eth_getStorageAt": get_storage_at,
    "eth_call": call,
    "eth_estimateGas": estimate_gas,
    "eth_sendRawTransaction": send_raw_transaction,
    "eth_getTransactionByHash": get_transaction_by_hash,
    "eth_getTransactionReceipt": get_transaction_receipt,
    "eth_getBlockByNumber": get_block_by_number,
    "eth_getBlockByHash": get_block_by_hash,
    "eth_getBlockReceipts": get_block_receipts,
    "eth_getBlockTransactionCountByNumber": get_block_tx_count_by_number,
    "eth_getLogs": get_logs,
    "eth_subscribe": subscribe,
    "eth_unsubscribe": unsubscribe,
}
