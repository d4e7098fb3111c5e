"""eth_call and eth_estimateGas on a throw-away copy of a block's state.

Execution uses py-evm's "costless" state (base fee 0, gas price 0), as geth does for
calls without fee fields, so the caller needs no funds for gas. eth-tester instead
runs calls as if paid and fails with "cannot afford" when `from` is absent
(pitfall 7); here a missing `from` defaults to the first dev account.
"pending" is served from the latest mined state (the pending block's state has no
root yet); documented in README.
"""

from eth.exceptions import InvalidInstruction, OutOfGas, Revert
from eth.vm.spoof import SpoofTransaction
from eth_abi import decode as abi_decode
from eth_utils import ValidationError

from . import admission, errors
from .hexcodec import b

ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
PANIC_SELECTOR = bytes.fromhex("4e487b71")  # Panic(uint256)
# Solidity panic codes -> geth's abi.UnpackRevert wording
PANIC_REASONS = {
    0x00: "generic panic", 0x01: "assert(false)", 0x11: "arithmetic underflow or overflow",
    0x12: "division or modulo by zero", 0x21: "enum overflow", 0x22: "invalid encoded storage byte array accessed",
    0x31: "out-of-bounds array access; popping on an empty array", 0x32: "out-of-bounds access of an array or bytesN",
    0x41: "out of memory", 0x51: "uninitialized function",
}


def revert_error(data):
    """geth: code 3, "execution reverted[: reason]", data = hex revert bytes."""
    message = "execution reverted"
    try:
        if data[:4] == ERROR_SELECTOR:
            message += ": " + abi_decode(["string"], data[4:])[0]
        elif data[:4] == PANIC_SELECTOR and len(data) == 36:
            code = int.from_bytes(data[4:], "big")
            message += ": " + PANIC_REASONS.get(code, f"unknown panic code: {code:#x}")
    except Exception:
        pass  # undecodable reason: plain "execution reverted", data still carries the bytes
    return errors.RpcError(errors.REVERT, message, b(data))


class CallArgs:
    __slots__ = ("sender", "to", "gas", "value", "data")

    def __init__(self, sender, to, gas, value, data):
        self.sender, self.to, self.gas, self.value, self.data = sender, to, gas, value, data


def _execute(vm, args, gas):
    """Runs the call on a costless child state of vm's header; returns the computation."""
    with vm.in_costless_state() as state:
        unsigned = vm.create_unsigned_transaction(
            nonce=state.get_nonce(args.sender), gas_price=0, gas=gas,
            to=args.to or b"", value=args.value, data=args.data)
        tx = SpoofTransaction(unsigned, from_=args.sender)
        try:
            return state.costless_execute_transaction(tx)
        except ValidationError as exc:
            text = str(exc).lower()
            if "afford" in text or "balance" in text:
                raise errors.tx_error(errors.INSUFFICIENT_FUNDS)
            if "gas limit" in text:
                raise errors.tx_error(errors.GAS_LIMIT)
            raise errors.tx_error(str(exc))


def _vm_error(comp):
    err = comp.error
    if isinstance(err, Revert):
        return revert_error(bytes(comp.output))
    if isinstance(err, OutOfGas):
        return errors.tx_error("out of gas")
    if isinstance(err, InvalidInstruction):
        return errors.tx_error(f"invalid opcode: {err}")
    return errors.tx_error(str(err) or type(err).__name__)


def call(vm, args, block_gas_limit):
    comp = _execute(vm, args, args.gas if args.gas is not None else block_gas_limit)
    if comp.is_error:
        raise _vm_error(comp)
    return bytes(comp.output)


def estimate_gas(vm, args, block_gas_limit):
    """Binary search for the lowest gas limit that succeeds, like geth's gasestimator."""
    cap = min(args.gas, block_gas_limit) if args.gas is not None else block_gas_limit
    floor = admission.floor_data_gas(args.data)
    comp = _execute(vm, args, cap)
    if comp.is_error:
        if isinstance(comp.error, OutOfGas):
            raise errors.tx_error(f"gas required exceeds allowance ({cap})")
        raise _vm_error(comp)
    # Plain value transfer to an account without code: geth short-cuts to 21000.
    if not args.data and args.to and not vm.state.get_code(args.to):
        return max(21000, floor)
    used = cap - comp.get_gas_remaining()
    lo, hi = max(used - 1, floor - 1), cap

    def ok(gas):
        if gas < floor:
            return False
        try:
            return not _execute(vm, args, gas).is_error
        except errors.RpcError:
            return False

    optimistic = min(hi, (used + comp.get_gas_refund() + 2300) * 64 // 63)
    if optimistic > lo:
        if ok(optimistic):
            hi = optimistic
        else:
            lo = optimistic
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return hi
