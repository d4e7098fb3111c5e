"""py-evm objects -> JSON-RPC dicts (pitfall 8: eth-tester returns snake_case Python ints).

Everything a client can ask about a mined block is rendered exactly once, when the
block is mined (pitfall 3), into a BlockRecord; lookups then only copy dicts.
Field names and shapes follow geth's RPCMarshalBlock / RPCMarshalHeader /
newRPCTransaction / MarshalReceipt.
"""

import rlp
from eth._utils.address import generate_contract_address

from .hexcodec import addr, b, h32, q

LEGACY, ACCESS_LIST, DYNAMIC_FEE, BLOB, SET_CODE = 0, 1, 2, 3, 4
EIP658_SUCCESS = b"\x01"


def tx_type(tx):
    t = getattr(tx, "type_id", None)
    return LEGACY if t is None else t


def effective_gas_price(tx, base_fee):
    """What the sender pays per gas: gasPrice for legacy/2930, min(feeCap, baseFee + tip) otherwise."""
    if tx_type(tx) in (LEGACY, ACCESS_LIST):
        return tx.gas_price
    return min(tx.max_fee_per_gas, base_fee + tx.max_priority_fee_per_gas)


def effective_tip(tx, base_fee):
    return effective_gas_price(tx, base_fee) - base_fee


def _access_list(tx):
    return [{"address": addr(a.account), "storageKeys": [h32(k) for k in a.storage_keys]}
            for a in tx.access_list]


def render_tx(tx, sender, block_hash=None, block_number=None, index=None, base_fee=None):
    """newRPCTransaction. block_* None = pending (geth then reports gasPrice = maxFeePerGas)."""
    t = tx_type(tx)
    out = {
        "blockHash": b(block_hash) if block_hash is not None else None,
        "blockNumber": q(block_number) if block_number is not None else None,
        "from": addr(sender),
        "gas": q(tx.gas),
        "gasPrice": None,
        "hash": b(tx.hash),
        "input": b(tx.data),
        "nonce": q(tx.nonce),
        "to": addr(tx.to) if tx.to else None,
        "transactionIndex": q(index) if index is not None else None,
        "value": q(tx.value),
        "type": q(t),
    }
    if t == LEGACY:
        out["gasPrice"] = q(tx.gas_price)
        out["v"] = q(tx.v)
        if tx.chain_id is not None:
            out["chainId"] = q(tx.chain_id)
    else:
        out["chainId"] = q(tx.chain_id)
        out["accessList"] = _access_list(tx)
        out["v"] = q(tx.y_parity)
        out["yParity"] = q(tx.y_parity)
        if t == ACCESS_LIST:
            out["gasPrice"] = q(tx.gas_price)
        else:
            out["maxFeePerGas"] = q(tx.max_fee_per_gas)
            out["maxPriorityFeePerGas"] = q(tx.max_priority_fee_per_gas)
            if block_hash is not None and base_fee is not None:
                out["gasPrice"] = q(effective_gas_price(tx, base_fee))
            else:
                out["gasPrice"] = q(tx.max_fee_per_gas)
        if t == SET_CODE:
            out["authorizationList"] = [
                {"chainId": q(a.chain_id), "address": addr(a.address), "nonce": q(a.nonce),
                 "yParity": q(a.y_parity), "r": q(a.r), "s": q(a.s)}
                for a in tx.authorization_list
            ]
    out["r"] = q(tx.r)
    out["s"] = q(tx.s)
    return out


def render_log(log, block_hash, block_number, timestamp, tx_hash, tx_index, log_index):
    return {
        "address": addr(log.address),
        "topics": [h32(t) for t in log.topics],
        "data": b(log.data),
        "blockNumber": q(block_number),
        "blockHash": b(block_hash),
        "blockTimestamp": q(timestamp),
        "transactionHash": b(tx_hash),
        "transactionIndex": q(tx_index),
        "logIndex": q(log_index),
        "removed": False,
    }


def _header_json(header, block_hash):
    out = {
        "number": q(header.block_number),
        "hash": b(block_hash),
        "parentHash": b(header.parent_hash),
        "nonce": b(header.nonce),
        "mixHash": b(header.mix_hash),
        "sha3Uncles": b(header.uncles_hash),
        "logsBloom": "0x" + header.bloom.to_bytes(256, "big").hex(),
        "transactionsRoot": b(header.transaction_root),
        "stateRoot": b(header.state_root),
        "receiptsRoot": b(header.receipt_root),
        "miner": addr(header.coinbase),
        "difficulty": q(header.difficulty),
        "extraData": b(header.extra_data),
        "gasLimit": q(header.gas_limit),
        "gasUsed": q(header.gas_used),
        "timestamp": q(header.timestamp),
        "baseFeePerGas": q(header.base_fee_per_gas),
    }
    # Post-Shanghai/Cancun/Prague header fields, present when the fork has them.
    for field, key in (("withdrawals_root", "withdrawalsRoot"), ("parent_beacon_block_root", "parentBeaconBlockRoot"),
                       ("requests_hash", "requestsHash")):
        v = getattr(header, field, None)
        if v is not None:
            out[key] = b(v)
    for field, key in (("blob_gas_used", "blobGasUsed"), ("excess_blob_gas", "excessBlobGas")):
        v = getattr(header, field, None)
        if v is not None:
            out[key] = q(v)
    return out


class BlockRecord:
    """A mined block, rendered once. Lists are shared: callers must not mutate them."""

    __slots__ = ("number", "hash", "header", "size", "txs", "tx_hashes", "receipts", "logs", "bloom", "base_fee")

    def block_json(self, full):
        out = dict(self.header)
        out["size"] = q(self.size)
        out["totalDifficulty"] = "0x0"
        out["transactions"] = list(self.txs) if full else list(self.tx_hashes)
        out["uncles"] = []
        out["withdrawals"] = []
        return out


def render_block(block, receipts, senders):
    """Builds the BlockRecord for a mined block; `senders` avoids re-recovering signatures."""
    header = block.header
    rec = BlockRecord()
    rec.number = header.block_number
    rec.hash = header.hash
    rec.bloom = header.bloom
    rec.base_fee = header.base_fee_per_gas
    rec.header = _header_json(header, rec.hash)
    rec.size = len(rlp.encode(block))
    rec.txs, rec.tx_hashes, rec.receipts, rec.logs = [], [], [], []
    prev_cumulative = 0
    log_index = 0
    for i, (tx, receipt, sender) in enumerate(zip(block.transactions, receipts, senders)):
        tx_json = render_tx(tx, sender, rec.hash, rec.number, i, rec.base_fee)
        rec.txs.append(tx_json)
        rec.tx_hashes.append(tx_json["hash"])
        logs = []
        for log in receipt.logs:
            logs.append(render_log(log, rec.hash, rec.number, header.timestamp, tx.hash, i, log_index))
            log_index += 1
        rec.logs.extend(logs)
        contract = None
        if not tx.to:
            contract = addr(generate_contract_address(sender, tx.nonce))
        rec.receipts.append({
            "blockHash": rec.header["hash"],
            "blockNumber": rec.header["number"],
            "contractAddress": contract,
            "cumulativeGasUsed": q(receipt.gas_used),
            "effectiveGasPrice": q(effective_gas_price(tx, rec.base_fee)),
            "from": addr(sender),
            "gasUsed": q(receipt.gas_used - prev_cumulative),
            "logs": logs,
            "logsBloom": "0x" + int(receipt.bloom).to_bytes(256, "big").hex(),
            "status": "0x1" if receipt.state_root == EIP658_SUCCESS else "0x0",
            "to": addr(tx.to) if tx.to else None,
            "transactionHash": tx_json["hash"],
            "transactionIndex": q(i),
            "type": q(tx_type(tx)),
        })
        prev_cumulative = receipt.gas_used
    return rec


def header_only(rec):
    """newHeads notification payload: the header without body fields, as geth sends it."""
    return dict(rec.header)
