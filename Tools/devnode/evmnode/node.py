"""The chain: one pending block, a future-nonce queue, mining and lookups.

Why not eth-tester's own send/mine API (REFERENCE §6):
  * pitfall 2: its manual-mining mode never advances the pending nonce and silently
    replaces same-nonce txs. We keep our own pending block on a py-evm VM instead.
  * pitfall 3: py-evm's MiningChain.apply_transaction rebuilds the block's tx and
    receipt tries and persists state after EVERY tx, which is quadratic in block size.
    Here each tx is executed once on the pending VM's state; tries, state root,
    persistence and the JSON rendering happen once, when the block is mined.
  * pitfall 4: eth-tester finds txs by scanning blocks backwards from the head; we
    use py-evm's transaction index (hash -> block number, position) plus an LRU of
    rendered blocks.
  * pitfall 10: it has no future-nonce queue, no fee-bump replacement, and returns
    null for a pending tx by hash; all three are implemented here.
  * eth-tester has no miner tip either: txs whose effective tip is below `miner_tip_wei`
    are accepted but kept out of the pending block (stuck.py), like geth's miner.gasprice.
  * pitfall 11: headers need timestamp > parent, so with sub-second blocks block
    timestamps run ahead of wall-clock time (py-evm uses max(now, parent + 1)).
    Nothing is done about it: that is how a 1-s-resolution chain must behave.
  * pitfall 12: each empty block lowers the base fee by 12.5 % (EIP-1559), down to
    7 wei where the integer maths stops moving it. geth --dev.period does the same.
    Interval mining keeps mining empty blocks (clients expect blocks to flow), and
    eth_gasPrice / eth_maxPriorityFeePerGas suggest base fee + a 1 gwei tip, so
    transactions built from the suggestions always clear the base fee.
eth-tester is still used to set up the chain (genesis, VM configuration: Prague).
"""

import collections
import os
import time

from eth.exceptions import HeaderNotFound, TransactionNotFound
from eth.vm.forks.london.headers import calculate_expected_base_fee_per_gas
from eth_tester.backends.pyevm.main import setup_tester_chain
from eth_utils import ValidationError

from . import admission, errors, ordered_trie, stuck
from .accounts import genesis_state
from .render import render_block, render_tx

# Rendered blocks kept in memory; older ones are re-rendered from the db on demand.
# The env override exists so tests can exercise the re-render path cheaply.
RECORD_CACHE_BLOCKS = int(os.environ.get("DEVNODE_RECORD_CACHE_BLOCKS", "1024"))
MAX_QUEUED_PER_SENDER = 1024
PRICE_BUMP_PERCENT = 10  # geth txpool.pricebump


class Node:
    def __init__(self, chain_id, fund_addresses, balance_wei, automine=True, min_tip_wei=1,
                 refuse_nonce_gaps=False, coinbase=b"\x00" * 20, miner_tip_wei=0):
        self.chain_id = chain_id
        self.automine = automine
        self.min_tip_wei = min_tip_wei
        self.miner_tip_wei = miner_tip_wei
        self.refuse_nonce_gaps = refuse_nonce_gaps
        self.coinbase = coinbase
        _, chain = setup_tester_chain(genesis_state=genesis_state(fund_addresses, balance_wei))
        # setup_tester_chain defines a fresh chain class per call, so setting the class
        # attribute affects only this chain. CHAINID opcode reads it through the VM.
        type(chain).chain_id = chain_id
        self.chain = chain
        self.chaindb = chain.chaindb
        self.block_listeners = []  # callables(BlockRecord), called after each mined block
        self._records = collections.OrderedDict()
        self._head_vm = None  # cached read-only VM at the head (invalidated on mining)
        self._queued = {}  # sender -> {nonce: tx}   (future nonces, geth's "queued")
        self._queued_by_hash = {}  # hash -> (tx, sender)
        self._stuck = stuck.StuckTxs()  # accepted, nonce-ready, but below the miner's tip
        self._releasing = False  # guards _release_stuck against re-entry through mine()
        self._open_pending()

    # ------------------------------------------------------------------ pending block

    def _open_pending(self, base_header=None):
        if base_header is None:
            base_header = self.chain.header.copy(coinbase=self.coinbase)
        self._base_header = base_header
        self._vm = self.chain.get_vm(base_header)
        self._header = base_header  # running header: gas used and bloom grow per tx
        self._txs, self._receipts, self._senders = [], [], []
        self._pending_index = {}  # hash -> position
        self._pending_by_nonce = {}  # (sender, nonce) -> position
        self._first_nonce = {}  # sender -> lowest nonce in the pending block (= mined nonce)

    def _refresh_if_idle(self):
        """An empty pending block opened long ago carries a stale timestamp: reopen it."""
        if not self._txs and int(time.time()) > self._base_header.timestamp:
            parent = self.chaindb.get_canonical_head()
            self.chain.header = self.chain.create_header_from_parent(parent)
            self._open_pending()

    @property
    def head_number(self):
        return self._base_header.block_number - 1

    @property
    def pending_base_fee(self):
        return self._base_header.base_fee_per_gas

    @property
    def block_gas_limit(self):
        return self._base_header.gas_limit

    def pending_count(self):
        return len(self._txs)

    def pool_nonce(self, sender):
        """The "pending" nonce: the pending block's nonce plus the sender's stuck txs (geth's
        pool nonce). Queued future nonces do not count, as in geth."""
        return self._vm.state.get_nonce(sender) + self._stuck.count(sender)

    def pool_status(self):
        """txpool_status: pending = nonce-ready txs not mined yet (pending block + stuck),
        queued = future nonces waiting for a gap to close."""
        return {"pending": len(self._txs) + len(self._stuck), "queued": len(self._queued_by_hash)}

    def _includable(self, tx):
        return stuck.includable(tx, self.pending_base_fee, self.miner_tip_wei)

    # ------------------------------------------------------------------ admission

    def send_raw(self, raw):
        """eth_sendRawTransaction. Returns the tx hash or raises RpcError (geth's strings)."""
        builder = self._vm.get_transaction_builder()
        tx = admission.decode(builder, raw)
        if tx.hash in self._pending_index or tx.hash in self._queued_by_hash or tx.hash in self._stuck:
            raise errors.tx_error(errors.ALREADY_KNOWN)
        sender = admission.check_stateless(tx, self.chain_id, self.block_gas_limit, self.min_tip_wei)
        self._refresh_if_idle()
        state = self._vm.state
        pending_nonce = state.get_nonce(sender)
        mined_nonce = self._first_nonce.get(sender, pending_nonce)
        if tx.nonce < mined_nonce:
            raise errors.tx_error(errors.NONCE_TOO_LOW)
        if tx.gas * admission.fee_cap(tx) + tx.value > state.get_balance(sender):
            raise errors.tx_error(errors.INSUFFICIENT_FUNDS)
        if admission.fee_cap(tx) < self.pending_base_fee:
            # geth's pool would park such a tx until the base fee drops; a devnode answers at once.
            raise errors.tx_error(errors.FEE_CAP_TOO_LOW)
        pool_nonce = pending_nonce + self._stuck.count(sender)
        if tx.nonce < pending_nonce:
            self._replace_pending(tx, sender)
        elif tx.nonce < pool_nonce:
            self._replace_stuck(tx, sender)
        elif tx.nonce > pool_nonce:
            self._enqueue_future(tx, sender)
        else:
            self._admit_next(tx, sender)
            self._promote(sender)
        return tx.hash

    def _admit_next(self, tx, sender):
        """tx carries the sender's pool nonce: into the pending block, or stuck when the miner
        would skip it or an earlier nonce of the sender is stuck (blocks keep nonce order)."""
        if self._stuck.count(sender) or not self._includable(tx):
            self._stuck.append(sender, tx)
        else:
            self._apply(tx, sender)

    @staticmethod
    def _bumped_enough(old, new):
        bump = 100 + PRICE_BUMP_PERCENT
        return (admission.fee_cap(new) * 100 >= admission.fee_cap(old) * bump
                and admission.tip_cap(new) * 100 >= admission.tip_cap(old) * bump)

    def _replace_pending(self, tx, sender):
        pos = self._pending_by_nonce[(sender, tx.nonce)]
        if not self._bumped_enough(self._txs[pos], tx):
            raise errors.tx_error(errors.REPLACEMENT_UNDERPRICED)
        # The pending state already contains the old tx's effects: re-execute the block
        # from its base with the replacement. Rare, so O(block) is fine.
        entries = list(zip(self._txs, self._senders))
        entries[pos] = (tx, sender)
        self._rebuild_pending(entries)

    def _replace_stuck(self, tx, sender):
        if not self._bumped_enough(self._stuck.at(sender, tx.nonce), tx):
            raise errors.tx_error(errors.REPLACEMENT_UNDERPRICED)
        self._stuck.replace(sender, tx)
        self._release_stuck()  # the bump may clear the miner's tip: then it is mined like a new tx

    def _rebuild_pending(self, entries):
        """Re-executes the pending block from its base with `entries` ((tx, sender), in order).
        A tx the miner would now skip moves to the stuck txs with the rest of its sender's."""
        self._releasing = True  # a block-full mine() inside must not release into a half-built block
        try:
            self._open_pending(self._base_header)
            evicted = {}  # sender -> [tx], ascending nonces
            for t, s in entries:
                if s in evicted or not self._includable(t):
                    evicted.setdefault(s, []).append(t)
                    continue
                try:
                    self._apply(t, s, mine=False)
                except errors.RpcError:
                    pass  # a later tx that no longer fits (e.g. funds) is dropped, as geth would
            for s, txs in evicted.items():
                self._stuck.prepend(s, txs)
            for s in self._stuck.senders():
                first = self._stuck.first(s)
                if first.nonce != self._vm.state.get_nonce(s):
                    self._demote_stuck(s)
        finally:
            self._releasing = False
        self._release_stuck()

    def _demote_stuck(self, sender):
        """A tx of the sender was dropped: its stuck txs now sit behind a gap, so they wait in
        the future-nonce queue (geth demotes them to queued the same way)."""
        nonce = self._vm.state.get_nonce(sender)
        queue = self._queued.setdefault(sender, {})
        for tx in self._stuck.pop_all(sender):
            if tx.nonce >= nonce:
                queue[tx.nonce] = tx
                self._queued_by_hash[tx.hash] = (tx, sender)
        if not queue:
            del self._queued[sender]

    def _release_stuck(self):
        """Moves stuck txs the miner now takes (lower tip, a replacement, a lower base fee) into
        the pending block, each sender's in nonce order; in automine each is mined at once."""
        if self._releasing or not self._stuck:
            return
        self._releasing = True
        try:
            moved = True
            while moved:  # automine: every block changes the base fee, so look again
                moved = False
                for sender in self._stuck.senders():
                    moved |= self._release_sender(sender)
        finally:
            self._releasing = False

    def _release_sender(self, sender):
        moved = False
        while True:
            tx = self._stuck.first(sender)
            if tx is None or not self._includable(tx) or tx.nonce != self._vm.state.get_nonce(sender):
                return moved
            self._stuck.pop_first(sender)
            moved = True
            try:
                self._apply(tx, sender)
            except errors.RpcError:
                self._demote_stuck(sender)  # dropped (e.g. funds): the rest waits behind the gap
                return moved

    def set_miner_tip(self, tip_wei):
        """devnode_setMinerTip: like geth's miner_setGasPrice, the next blocks skip txs paying a
        lower effective tip. Raising it takes such txs out of the pending block; lowering it
        releases stuck txs (automine: mined right away)."""
        self.miner_tip_wei = tip_wei
        if not all(self._includable(t) for t in self._txs):
            self._rebuild_pending(list(zip(self._txs, self._senders)))
        self._release_stuck()

    def drop_pool(self):
        """devnode_dropPending: forgets every tx not mined yet (pending block, stuck, queued), as a
        node restarted without its mempool would. Returns how many were dropped."""
        dropped = len(self._txs) + len(self._stuck) + len(self._queued_by_hash)
        if self._txs:
            self._open_pending(self._base_header)
        self._stuck.clear()
        self._queued.clear()
        self._queued_by_hash.clear()
        return dropped

    def _enqueue_future(self, tx, sender):
        if self.refuse_nonce_gaps:
            raise errors.tx_error(errors.NONCE_TOO_HIGH)
        queue = self._queued.setdefault(sender, {})
        old = queue.get(tx.nonce)
        if old is not None:
            if not self._bumped_enough(old, tx):
                raise errors.tx_error(errors.REPLACEMENT_UNDERPRICED)
            del self._queued_by_hash[old.hash]
        elif len(queue) >= MAX_QUEUED_PER_SENDER:
            raise errors.tx_error(errors.POOL_FULL)
        queue[tx.nonce] = tx
        self._queued_by_hash[tx.hash] = (tx, sender)

    def _promote(self, sender):
        """Moves queued txs whose nonce became next into the pending block (or mines them, or
        adds them to the sender's stuck txs)."""
        queue = self._queued.get(sender)
        while queue:
            nonce = self.pool_nonce(sender)
            for stale in [n for n in queue if n < nonce]:
                del self._queued_by_hash[queue.pop(stale).hash]
            tx = queue.pop(nonce, None)
            if tx is None:
                break
            del self._queued_by_hash[tx.hash]
            try:
                if admission.fee_cap(tx) < self.pending_base_fee:
                    raise errors.tx_error(errors.FEE_CAP_TOO_LOW)
                self._admit_next(tx, sender)
            except errors.RpcError:
                break  # dropped; a gap remains, like geth after an eviction
        if queue is not None and not queue and self._queued.get(sender) is queue:
            del self._queued[sender]

    def _apply(self, tx, sender, mine=None):
        if self._header.gas_used + tx.gas > self._header.gas_limit:
            if not self._txs:
                raise errors.tx_error(errors.GAS_LIMIT)
            self.mine()  # block full: seal it now, the tx goes into the next one
        try:
            receipt, _computation = self._vm.apply_transaction(self._header, tx)
        except ValidationError as exc:
            raise errors.tx_error(_geth_message(str(exc)))
        self._header = self._vm.add_receipt_to_header(self._header, receipt)
        pos = len(self._txs)
        self._txs.append(tx)
        self._receipts.append(receipt)
        self._senders.append(sender)
        self._pending_index[tx.hash] = pos
        self._pending_by_nonce[(sender, tx.nonce)] = pos
        self._first_nonce.setdefault(sender, tx.nonce)
        if self.automine if mine is None else mine:
            self.mine()

    # ------------------------------------------------------------------ mining

    def mine(self):
        """Seals the pending block (possibly empty). Returns its BlockRecord."""
        vm = self._vm
        # What vm.set_block_transactions_and_withdrawals does, with the one-pass trie builder.
        tx_root, tx_nodes = ordered_trie.root_and_nodes([tx.encode() for tx in self._txs])
        receipt_root, receipt_nodes = ordered_trie.root_and_nodes([r.encode() for r in self._receipts])
        self.chaindb.persist_trie_data_dict(tx_nodes)
        self.chaindb.persist_trie_data_dict(receipt_nodes)
        header = self._header.copy(transaction_root=tx_root, receipt_root=receipt_root)
        block = vm.get_block().copy(header=header, transactions=tuple(self._txs))
        # Post-merge: prevrandao (mix hash) is random, as eth-tester does.
        # pack + finalize is vm.mine_block without its validate_block: that re-derives
        # the tx trie we built a line above (a third of the mining cost) to check a
        # block we assembled ourselves.
        mined = vm.finalize_block(vm.pack_block(block, mix_hash=os.urandom(32))).block
        self.chaindb.persist_block(mined)
        self.chain.header = self.chain.create_header_from_parent(mined.header)
        rec = render_block(mined, self._receipts, self._senders)
        self._remember(rec)
        self._head_vm = None
        self._open_pending()
        for listener in list(self.block_listeners):
            listener(rec)
        self._release_stuck()  # the new base fee may lift a stuck tx's effective tip
        return rec

    # ------------------------------------------------------------------ lookups

    def _remember(self, rec):
        self._records[rec.number] = rec
        self._records.move_to_end(rec.number)
        while len(self._records) > RECORD_CACHE_BLOCKS:
            self._records.popitem(last=False)

    def record(self, number):
        """BlockRecord of canonical block `number`, or None if it is not mined."""
        if number < 0 or number > self.head_number:
            return None
        rec = self._records.get(number)
        if rec is None:
            block = self.chain.get_canonical_block_by_number(number)
            receipts = block.get_receipts(self.chaindb)
            rec = render_block(block, receipts, [tx.sender for tx in block.transactions])
            self._remember(rec)
        return rec

    def record_by_hash(self, block_hash):
        try:
            header = self.chaindb.get_block_header_by_hash(block_hash)
        except HeaderNotFound:
            return None
        if self.chaindb.get_canonical_block_hash(header.block_number) != block_hash:
            return None
        return self.record(header.block_number)

    def header_at(self, number):
        return self.chaindb.get_canonical_block_header_by_number(number)

    def find_tx(self, tx_hash):
        """('mined', record, index) | ('pending', tx_json) | None."""
        pos = self._pending_index.get(tx_hash)
        if pos is not None:
            return ("pending", render_tx(self._txs[pos], self._senders[pos]))
        queued = self._queued_by_hash.get(tx_hash) or self._stuck.get(tx_hash)
        if queued is not None:
            return ("pending", render_tx(queued[0], queued[1]))
        try:
            number, index = self.chaindb.get_transaction_index(tx_hash)
        except TransactionNotFound:
            return None
        rec = self.record(number)
        if rec is None or index >= len(rec.txs):
            return None
        return ("mined", rec, index)

    def pending_block_json(self, full):
        """geth-like pending block: no hash/nonce yet, txs without block position."""
        from .render import _header_json
        out = _header_json(self._header, b"")
        out["hash"] = None
        out["nonce"] = None
        out["transactions"] = [render_tx(t, s) if full else "0x" + t.hash.hex()
                               for t, s in zip(self._txs, self._senders)]
        out["uncles"] = []
        out["withdrawals"] = []
        return out

    def next_base_fee(self, number):
        """Base fee of the block after `number` (what eth_feeHistory reports last)."""
        if number == self.head_number:
            return self.pending_base_fee
        return calculate_expected_base_fee_per_gas(self.header_at(number))

    # ------------------------------------------------------------------ state access

    def resolve_number(self, tag):
        """Block tag -> canonical number; 'pending' -> None. Raises -32000 like geth."""
        if tag == "pending":
            return None
        if tag in ("latest", "safe", "finalized"):
            return self.head_number
        if tag == "earliest":
            return 0
        if isinstance(tag, tuple):
            rec = self.record_by_hash(tag[1])
            if rec is None:
                raise errors.RpcError(errors.SERVER_ERROR, "header for hash not found")
            return rec.number
        if tag > self.head_number:
            raise errors.RpcError(errors.SERVER_ERROR, "header not found")
        return tag

    def state_at(self, tag):
        number = self.resolve_number(tag)
        if number is None:
            return self._vm.state
        return self.vm_at(number).state

    def vm_at(self, number):
        if number == self.head_number:
            if self._head_vm is None:
                self._head_vm = self.chain.get_vm(self.header_at(number))
            return self._head_vm
        return self.chain.get_vm(self.header_at(number))

    def pending_vm(self):
        return self._vm


def _geth_message(text):
    """py-evm's validation wording -> geth's txpool string."""
    low = text.lower()
    if "nonce" in low:
        return errors.NONCE_TOO_LOW if "expected" in low else text
    if "afford" in low or "balance" in low or "insufficient funds" in low:
        return errors.INSUFFICIENT_FUNDS
    if "base fee" in low:
        return errors.FEE_CAP_TOO_LOW
    if "intrinsic" in low:
        return errors.INTRINSIC_GAS
    if "gas limit" in low:
        return errors.GAS_LIMIT
    return text
