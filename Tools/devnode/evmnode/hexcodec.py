"""Strict parsing of JSON-RPC inputs, following geth's hexutil rules.

geth rejects quantities with leading zeros ("0x012a"), empty quantities ("0x"),
odd-length data and JSON numbers where a hex string is expected; all of those
become -32602 here too, so a client that is lax on the wire fails against the
devnode the same way it would fail against geth.
"""

import re

from .errors import invalid_params

_QUANTITY = re.compile(r"^0x(0|[1-9a-fA-F][0-9a-fA-F]*)$")
_DATA = re.compile(r"^0x([0-9a-fA-F]{2})*$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_HASH = re.compile(r"^0x[0-9a-fA-F]{64}$")

BLOCK_TAGS = ("latest", "earliest", "pending", "safe", "finalized")


def quantity(value, what="quantity", bits=256):
    if not isinstance(value, str):
        raise invalid_params(f"invalid argument: {what}: cannot unmarshal non-string into hex quantity")
    if value in ("0x", "0X") or not value.startswith("0x"):
        raise invalid_params(f"invalid argument: {what}: hex string without 0x prefix" if not value.startswith("0x")
                             else f"invalid argument: {what}: hex string \"0x\"")
    if not _QUANTITY.match(value):
        if len(value) > 3 and value[2] == "0":
            raise invalid_params(f"invalid argument: {what}: hex number with leading zero digits")
        raise invalid_params(f"invalid argument: {what}: invalid hex string")
    n = int(value, 16)
    if n.bit_length() > bits:
        raise invalid_params(f"invalid argument: {what}: hex number > {bits} bits")
    return n


def quantity_or_decimal(value, what="quantity"):
    """geth's math.HexOrDecimal64 (eth_feeHistory blockCount): hex string, decimal string or number."""
    if isinstance(value, bool):
        raise invalid_params(f"invalid argument: {what}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        if value.startswith("0x"):
            return quantity(value, what, 64)
        if value.isdigit():
            return int(value)
    raise invalid_params(f"invalid argument: {what}: invalid number")


def data(value, what="data"):
    if not isinstance(value, str) or not value.startswith("0x"):
        raise invalid_params(f"invalid argument: {what}: hex string without 0x prefix")
    if not _DATA.match(value):
        raise invalid_params(f"invalid argument: {what}: hex string of odd length" if len(value) % 2
                             else f"invalid argument: {what}: invalid hex string")
    return bytes.fromhex(value[2:])


def address(value, what="address"):
    # geth accepts any letter case and does not verify EIP-55 checksums on input.
    if not isinstance(value, str) or not _ADDRESS.match(value):
        raise invalid_params(f"invalid argument: {what}: hex string has wrong length or is not an address")
    return bytes.fromhex(value[2:])


def hash32(value, what="hash"):
    if not isinstance(value, str) or not _HASH.match(value):
        raise invalid_params(f"invalid argument: {what}: hex string has length {len(value) - 2 if isinstance(value, str) else 0}, want 64 for common.Hash")
    return bytes.fromhex(value[2:])


def block_tag(value, what="block number"):
    """Returns a tag string, an int block number, or ("hash", bytes) for EIP-1898 {blockHash}."""
    if isinstance(value, str):
        if value in BLOCK_TAGS:
            return value
        return quantity(value, what, 64)
    if isinstance(value, dict):
        if "blockHash" in value and "blockNumber" in value:
            raise invalid_params("invalid argument: cannot specify both BlockHash and BlockNumber, choose one or the other")
        if "blockHash" in value:
            return ("hash", hash32(value["blockHash"], "blockHash"))
        if "blockNumber" in value:
            return block_tag(value["blockNumber"], what)
    raise invalid_params(f"invalid argument: {what}: hex string without 0x prefix")


# --- output --------------------------------------------------------------

def q(n):
    """Quantity: 0x0 for zero, no leading zeros."""
    return hex(n)


def b(raw):
    return "0x" + bytes(raw).hex()


def h32(n_or_bytes):
    if isinstance(n_or_bytes, int):
        return "0x" + n_or_bytes.to_bytes(32, "big").hex()
    return "0x" + bytes(n_or_bytes).hex()


def addr(raw):
    # geth prints addresses in lower case (hexutil), not EIP-55.
    return "0x" + bytes(raw).hex() if raw else None
