"""The one-pass trie builder must give py-evm's roots and nodes exactly."""

import os

import pytest
from eth.db.trie import _make_trie_root_and_nodes

from evmnode.ordered_trie import root_and_nodes


@pytest.mark.parametrize("count", [0, 1, 2, 3, 15, 16, 17, 127, 128, 129, 300])
def test_matches_py_evm(count):
    rnd = os.urandom
    items = tuple(rnd(1 + (i * 37) % 120) for i in range(count))
    assert root_and_nodes(items) == _make_trie_root_and_nodes(items)


def test_small_items_embedded():
    items = tuple(bytes([i]) for i in range(20))
    assert root_and_nodes(items) == _make_trie_root_and_nodes(items)
