"""Deterministic dev accounts.

Key i is keccak256("devnode:<i>"), so every run, test and quickstart gets the same
addresses without shipping key material. These keys are public knowledge: never
use them outside a loopback devnode.
"""

from eth_keys import keys
from eth_utils import keccak


def dev_private_key(index):
    return keccak(f"devnode:{index}".encode())


def dev_accounts(count):
    """[(private_key_bytes, canonical_address_bytes)] for the first `count` dev accounts."""
    out = []
    for i in range(count):
        pk = keys.PrivateKey(dev_private_key(i))
        out.append((pk.to_bytes(), pk.public_key.to_canonical_address()))
    return out


def genesis_state(addresses, balance_wei):
    return {a: {"balance": balance_wei, "nonce": 0, "code": b"", "storage": {}} for a in addresses}
