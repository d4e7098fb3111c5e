"""Stateless checks on a raw transaction, in geth's order, before it reaches py-evm.

eth-tester/py-evm accept things geth refuses (pitfall 1): a transaction signed for
another chain id, and legacy transactions without EIP-155 replay protection. py-evm
also reports problems with its own wording; the checks below produce geth's strings.
Order follows geth: RPC-level replay protection, then txpool ValidateTransaction
(type, size, block gas limit, tip <= fee cap, sender/chain id, min tip, intrinsic gas).
"""

from eth_keys.exceptions import BadSignature
from eth_utils import ValidationError

from . import errors
from .render import BLOB, LEGACY, tx_type

MAX_TX_SIZE = 128 * 1024  # geth txMaxSize (4 * 32 KiB slots)
TX_BASE_GAS = 21000
FLOOR_COST_PER_TOKEN = 10  # EIP-7623 (Prague) calldata floor


def decode(builder, raw):
    if len(raw) == 0:
        raise errors.tx_error("typed transaction too short")
    if len(raw) > MAX_TX_SIZE:
        raise errors.tx_error(errors.OVERSIZED)
    if raw[0] == BLOB:
        # Blob txs need a sidecar and a consensus layer; the devnode has neither.
        raise errors.tx_error(errors.TX_TYPE_NOT_SUPPORTED)
    if raw[0] < 0x7f and raw[0] not in (1, 2, 4):
        raise errors.tx_error(errors.TX_TYPE_NOT_SUPPORTED)
    try:
        return builder.decode(raw)
    except Exception as exc:  # rlp.DecodingError, DeserializationError, ValidationError, ...
        text = str(exc)
        if "ignature" in text:
            raise errors.tx_error(errors.INVALID_SENDER)
        raise errors.tx_error(f"rlp: {text}" if text else "rlp: invalid transaction encoding")


def fee_cap(tx):
    return tx.gas_price if tx_type(tx) in (LEGACY, 1) else tx.max_fee_per_gas


def tip_cap(tx):
    return tx.gas_price if tx_type(tx) in (LEGACY, 1) else tx.max_priority_fee_per_gas


def floor_data_gas(data):
    zeros = data.count(0)
    tokens = zeros + 4 * (len(data) - zeros)
    return TX_BASE_GAS + FLOOR_COST_PER_TOKEN * tokens


def check_stateless(tx, chain_id, block_gas_limit, min_tip_wei):
    """Returns the recovered sender or raises RpcError with geth's message."""
    # geth's SubmitTransaction: refuse unprotected legacy txs (RPC default AllowUnprotectedTxs=false).
    if tx_type(tx) == LEGACY and tx.chain_id is None:
        raise errors.tx_error(errors.UNPROTECTED)
    if tx.gas > block_gas_limit:
        raise errors.tx_error(errors.GAS_LIMIT)
    if tip_cap(tx) > fee_cap(tx):
        raise errors.tx_error(errors.TIP_ABOVE_FEE_CAP)
    # geth: types.Sender with the chain's signer fails with ErrInvalidChainId first.
    if tx.chain_id != chain_id:
        raise errors.tx_error(errors.INVALID_CHAIN_ID)
    try:
        sender = tx.sender
    except (ValidationError, BadSignature, ValueError):  # bad r/s/v: no public key recovers
        raise errors.tx_error(errors.INVALID_SENDER)
    if tip_cap(tx) < min_tip_wei:
        raise errors.tx_error(errors.UNDERPRICED)
    if tx.gas < tx.intrinsic_gas:
        raise errors.tx_error(errors.INTRINSIC_GAS)
    if tx.gas < floor_data_gas(tx.data):
        raise errors.tx_error(errors.FLOOR_DATA_GAS)
    return sender
