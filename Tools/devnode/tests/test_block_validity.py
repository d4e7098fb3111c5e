"""Blocks the devnode mines must be valid Ethereum blocks: a second, independent py-evm
chain re-executes and imports every one of them with full validation (state root, tx and
receipt roots, gas, bloom, base fee). This guards the one-pass block building of node.py."""

from eth_account import Account
from eth_tester.backends.pyevm.main import get_default_genesis_params, setup_tester_chain
from eth_utils import to_checksum_address

from conftest import CHAIN_ID, GWEI, LOGGER_RUNTIME, initcode
from evmnode.accounts import dev_accounts, genesis_state
from evmnode.node import Node


def test_mined_blocks_import_into_an_independent_chain():
    accounts = dev_accounts(3)
    addresses = [a for _, a in accounts]
    node = Node(CHAIN_ID, addresses, 10**24, automine=False)
    signers = [Account.from_key(k) for k, _ in accounts]
    nonces = [0, 0, 0]

    def send(i, **fields):
        tx = {"type": 2, "chainId": CHAIN_ID, "nonce": nonces[i], "value": 1, "gas": 21000,
              "maxFeePerGas": 10 * GWEI, "maxPriorityFeePerGas": GWEI, **fields}
        tx = {k: v for k, v in tx.items() if v is not None}
        nonces[i] += 1
        node.send_raw(bytes(signers[i].sign_transaction(tx).raw_transaction))

    send(0, gas=200000, value=0, data=initcode(LOGGER_RUNTIME))
    node.mine()
    contract = to_checksum_address(node.record(1).receipts[0]["contractAddress"])
    for _ in range(3):
        for i in range(3):
            send(i, to=contract, value=0, gas=60000, data="0x" + "00" * 31 + f"{i:02x}")
            send(i, to=to_checksum_address("0x" + "22" * 20))
        send(1, to=to_checksum_address("0x" + "33" * 20), type=1, gasPrice=2 * GWEI, accessList=[],
             maxFeePerGas=None, maxPriorityFeePerGas=None)
        node.mine()
    node.mine()  # an empty block too

    genesis = node.chain.get_canonical_block_header_by_number(0)
    _, other = setup_tester_chain(genesis_params=get_default_genesis_params({"timestamp": genesis.timestamp}),
                                  genesis_state=genesis_state(addresses, 10**24))
    type(other).chain_id = CHAIN_ID
    assert other.get_canonical_head().hash == genesis.hash
    for n in range(1, node.head_number + 1):
        block = node.chain.get_canonical_block_by_number(n)
        other.import_block(block)  # raises on any invalid field
        assert other.get_canonical_head().hash == block.hash
    assert node.head_number == 5 and len(node.record(2).tx_hashes) == 7
